package faults_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
)

// inspect runs `agent inspect` on a stopped agent's fold and returns its cursor.
func inspectCursor(t testing.TB, dir string) uint64 {
	t.Helper()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return 0 // killed before it created its data dir: nothing persisted yet
	}
	code, out, errOut := harness.RunAgent(t, nil, "inspect", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("agent inspect: exit %d: %s", code, errOut)
	}
	var in struct {
		Cursor uint64 `json:"cursor"`
	}
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatalf("agent inspect output %q: %v", out, err)
	}
	return in.Cursor
}

// TestKill9Agent kills the agent with SIGKILL at random moments under a steady write load,
// FAULT_CYCLES times (default 100) per backend, restarting it on the same data directory.
// After every kill the persisted cursor is at least the cursor the agent reported before
// the kill (an applied update is never lost); at the end the fold equals the bucket key by
// key and reflects every acknowledged write.
func TestKill9Agent(t *testing.T) {
	for _, backend := range []string{"pebble", "memory"} {
		t.Run(backend, func(t *testing.T) { kill9Cycles(t, backend, cycles(t, 100)) })
	}
}

func kill9Cycles(t *testing.T, backend string, kills int) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "kill9")
	w := startWriter(t, b, "app.", 400, 64, time.Millisecond)
	dir := filepath.Join(t.TempDir(), "fold")
	args := []string{"--nats-url", n.URL(), "--bucket", "kill9", "--data-dir", dir, "--backend", backend, "--batch-window", "2ms"}
	var moments [3]int // killed while starting, while serving, right after applying
	var seen uint64    // the highest cursor the agent reported before a kill
	for i := range kills {
		a := harness.LaunchAgent(t, args...)
		moment := rand.IntN(3)
		if moment == 0 {
			time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond) // opening, connecting, catching up
		} else {
			if err := a.WaitListening(); err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
			if moment == 1 {
				time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
			} else {
				target := w.acked.Load() + rand.Int64N(200)
				proctest.Eventually(t, 60*time.Second, "the agent applying the writer's updates", func() error {
					st, err := a.Status()
					if err != nil {
						return err
					}
					if int64(st.Cursor) < target {
						return fmt.Errorf("cursor %d < %d", st.Cursor, target)
					}
					return nil
				})
			}
			if st, err := a.Status(); err == nil {
				seen = max(seen, st.Cursor)
			}
		}
		moments[moment]++
		a.Kill()
		if got := inspectCursor(t, dir); got < seen {
			t.Fatalf("cycle %d: persisted cursor %d is behind the cursor %d the agent reported before the kill", i, got, seen)
		}
	}
	w.halt()
	a := harness.StartAgent(t, args...)
	a.WaitCaughtUp(t, b, 60*time.Second)
	lost := compareFold(t, b, a.Fold(t), w)
	a.Terminate(t)
	compareFold(t, b, harness.DumpFold(t, dir), w)
	if code, out, errOut := harness.RunAgent(t, nil, "verify", "--data-dir", dir); code != 0 {
		t.Fatalf("final verify: exit %d %s %s", code, out, errOut)
	}
	if w.acked.Load() < int64(kills) {
		t.Fatalf("the writer made only %d acknowledged writes in %d cycles", w.acked.Load(), kills)
	}
	report(t, "kill9-agent/"+backend, "cycles", kills, "killedStarting", moments[0], "killedServing", moments[1],
		"killedAfterApplying", moments[2], "updatesWritten", w.acked.Load(), "updatesLost", lost, "finalCursor", inspectCursor(t, dir))
}
