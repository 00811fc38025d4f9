package faults_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
)

// TestNATSRestarts restarts the nats-server process (same port, same JetStream store dir)
// under a steady write load while the agent follows the bucket: alternately gracefully
// (SIGTERM) and with SIGKILL, each time mid-stream (after the agent applied some of the
// writer's updates), at least 20 times (FAULT_CYCLES/5 when larger). After each restart the
// agent must be Live again past the server's new last sequence; every fourth outage lasts
// until the agent reports itself Degraded. At the end the fold equals
// the bucket key by key and reflects every acknowledged write.
func TestNATSRestarts(t *testing.T) {
	restarts := max(20, cycles(t, 100)/5)
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "restarts")
	w := startWriter(t, b, "cfg.", 300, 128, time.Millisecond)
	dir := filepath.Join(t.TempDir(), "fold")
	a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "restarts", "--data-dir", dir, "--backend", "pebble", "--batch-window", "2ms")
	a.WaitCaughtUp(t, b, 60*time.Second)
	var graceful, killed, degradedSeen int
	for i := range restarts {
		// Mid-stream: the writer is writing and the agent has applied a random amount more.
		target := a.MustStatus(t).Cursor + uint64(20+rand.IntN(200))
		proctest.Eventually(t, 60*time.Second, "the agent applying the writer's updates", func() error {
			st, err := a.Status()
			if err != nil {
				return err
			}
			if st.Cursor < target {
				return fmt.Errorf("cursor %d < %d (phase %s, lastError %q)", st.Cursor, target, st.Phase, st.LastError)
			}
			return nil
		})
		if i%2 == 0 {
			n.Stop()
			graceful++
		} else {
			n.Kill()
			killed++
		}
		if i%4 == 3 {
			// A longer outage: the agent must notice and say so (Degraded, stale reads).
			proctest.Eventually(t, 30*time.Second, "the agent Degraded while NATS is down", func() error {
				st, err := a.Status()
				if err != nil {
					return err
				}
				if st.Phase != "Degraded" || !st.Stale || st.LastError == "" {
					return fmt.Errorf("phase %s stale %v lastError %q", st.Phase, st.Stale, st.LastError)
				}
				return nil
			})
			degradedSeen++
		} else {
			time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond) // a short outage
		}
		n.Start()
		bs, err := b.Status(context.Background())
		for err != nil { // the test's own connection reconnects
			time.Sleep(20 * time.Millisecond)
			bs, err = b.Status(context.Background())
		}
		proctest.Eventually(t, 60*time.Second, "the agent Live past the restarted server's last sequence", func() error {
			st, err := a.Status()
			if err != nil {
				return err
			}
			if st.Phase != "Live" || st.Cursor < bs.LastSeq {
				return fmt.Errorf("phase %s cursor %d < %d (lastError %q)", st.Phase, st.Cursor, bs.LastSeq, st.LastError)
			}
			return nil
		})
	}
	w.halt()
	a.WaitCaughtUp(t, b, 60*time.Second)
	lost := compareFold(t, b, a.Fold(t), w)
	a.Terminate(t)
	compareFold(t, b, harness.DumpFold(t, dir), w)
	report(t, "nats-restarts", "restarts", restarts, "graceful", graceful, "kill9", killed, "longOutagesDegraded", degradedSeen,
		"recoveries", restarts, "updatesWritten", w.acked.Load(), "writesRefusedWhileDown", w.failed.Load(), "updatesLost", lost)
}
