package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// TestRestartsMidStreamWatchDeliversEverything runs a writer and a client watch while first
// nats-server is killed and restarted (the agent goes Degraded, serves stale reads, and
// comes back by itself) and then the agent itself is stopped and restarted on the same
// address. The watch delivers every acknowledged write once, in order, across both, and
// the fold ends equal to the bucket.
func TestRestartsMidStreamWatchDeliversEverything(t *testing.T) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	// History 64 keeps every revision the writer makes here: a resuming watch then has
	// every acknowledged write to deliver (with history 1, NATS drops revisions superseded
	// while the agent is down, and the fold rightly never applies them).
	b := proctest.CreateBucketWith(t, conn, kv.BucketConfig{Name: "restart", History: 64})
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t))
	args := []string{"--nats-url", n.URL(), "--bucket", "restart", "--data-dir", dir, "--listen", listen}
	a := harness.StartAgent(t, args...)
	st := a.WaitCaughtUp(t, b, 20*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var seen []uint64
	watchErr := make(chan error, 1)
	go func() {
		for ev, err := range a.Client(t).Watch(ctx, "", st.Cursor) {
			if err != nil {
				watchErr <- err
				return
			}
			mu.Lock()
			seen = append(seen, ev.Revision)
			mu.Unlock()
		}
	}()
	w := startWriter(t, b, "cfg.", 200, 300)
	waitAcks := func(n int64) {
		proctest.Eventually(t, 20*time.Second, "writer progress", func() error {
			if w.acks.Load() < n {
				return fmt.Errorf("%d acks", w.acks.Load())
			}
			return nil
		})
	}
	waitAcks(200)

	// nats-server dies: Degraded within a few seconds, reads still served, marked stale.
	n.Kill()
	killed := time.Now()
	proctest.Eventually(t, 10*time.Second, "agent Degraded", func() error {
		st, err := a.Status()
		if err != nil {
			return err
		}
		if st.Phase != "Degraded" || !st.Stale || st.LastError == "" {
			return fmt.Errorf("phase %s stale %v", st.Phase, st.Stale)
		}
		return nil
	})
	t.Logf("Degraded %s after nats-server was killed", time.Since(killed).Round(time.Millisecond))
	resp, err := http.Get(a.BaseURL() + "/v1/keys/cfg.k0000")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 404 || resp.Header.Get("X-Slipstream-Stale") != "true" {
		t.Fatalf("read while Degraded: %d stale=%q", resp.StatusCode, resp.Header.Get("X-Slipstream-Stale"))
	}
	if resp, _ := http.Get(a.BaseURL() + "/readyz"); resp.StatusCode != 503 {
		t.Fatalf("readyz while Degraded: %d", resp.StatusCode)
	}

	n.Start()
	a.WaitCaughtUp(t, b, 30*time.Second)
	acked := w.acks.Load()
	waitAcks(acked + 200)

	// The agent restarts (SIGTERM, same address): the watch resumes from its cursor.
	if took := a.Terminate(t); took > 10*time.Second {
		t.Fatalf("SIGTERM: exit after %s", took)
	}
	a = harness.StartAgent(t, args...)
	acked = w.acks.Load()
	waitAcks(acked + 200)
	w.halt()
	final := a.WaitCaughtUp(t, b, 30*time.Second)

	proctest.Eventually(t, 20*time.Second, "watch to reach the final cursor", func() error {
		select {
		case err := <-watchErr:
			t.Fatalf("watch ended: %v", err)
		default:
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 || seen[len(seen)-1] < final.Cursor {
			return fmt.Errorf("watch at %d of %d", len(seen), final.Cursor)
		}
		return nil
	})
	cancel()
	mu.Lock()
	defer mu.Unlock()
	got := map[uint64]bool{}
	for i, r := range seen {
		if i > 0 && r <= seen[i-1] {
			t.Fatalf("watch out of order or duplicated: %d after %d", r, seen[i-1])
		}
		got[r] = true
	}
	w.mu.Lock()
	for _, r := range w.revs {
		if !got[r] {
			i := sort.Search(len(seen), func(i int) bool { return seen[i] >= r })
			t.Fatalf("watch missed acknowledged write at revision %d (seen around it: %v)", r, seen[max(0, i-5):min(len(seen), i+5)])
		}
	}
	nw := len(w.revs)
	w.mu.Unlock()
	if err := proctest.Diff(proctest.BucketState(t, b, ""), dumpFoldLive(t, a, dir)); err != nil {
		t.Fatalf("fold != bucket: %v", err)
	}
	t.Logf("%d acknowledged writes, %d watch events, no gap across a nats-server kill and an agent restart", nw, len(seen))
}

// dumpFoldLive stops the agent (SIGTERM) and dumps its fold.
func dumpFoldLive(t *testing.T, a *proctest.Agent, dir string) []proctest.Entry {
	t.Helper()
	a.Terminate(t)
	return harness.DumpFold(t, dir)
}
