package faults_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
)

// TestNetworkPartition puts a TCP proxy on 127.0.0.1 between the agent and nats-server and
// partitions it in every way the proxy knows (dropped connections, a blackhole, half-open
// connections forwarding one direction only, a dead peer the agent is not told about),
// while a writer keeps writing to NATS directly. Each time the agent must turn Degraded
// (never exit, keep serving the last fold marked stale), and after the proxy heals it must
// be Live again at the bucket's last sequence. At the end the fold equals the bucket key by
// key and reflects every acknowledged write.
func TestNetworkPartition(t *testing.T) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "partition")
	w := startWriter(t, b, "net.", 200, 64, 2*time.Millisecond)
	px := startProxy(t, fmt.Sprintf("127.0.0.1:%d", n.Port()))
	dir := filepath.Join(t.TempDir(), "fold")
	a := harness.StartAgent(t, "--nats-url", "nats://"+px.addr(), "--bucket", "partition", "--data-dir", dir, "--backend", "memory", "--batch-window", "2ms")
	a.WaitCaughtUp(t, b, 60*time.Second)
	rounds := max(1, cycles(t, 100)/100)
	var episodes int
	var recoveries []string
	for range rounds {
		for _, mode := range partitionModes(t) {
			t.Logf("partition: %s", mode)
			px.set(mode)
			started := time.Now()
			proctest.Eventually(t, 30*time.Second, "the agent Degraded during the "+mode.String()+" partition", func() error {
				st, err := a.Status()
				if err != nil {
					return err
				}
				if st.Phase != "Degraded" || !st.Stale || st.LastError == "" {
					return fmt.Errorf("phase %s stale %v lastError %q", st.Phase, st.Stale, st.LastError)
				}
				return nil
			})
			detected := time.Since(started)
			w.waitAcked(t, 100, 30*time.Second) // NATS moves on while the agent is cut off
			px.set(healed)
			healedAt := time.Now()
			a.WaitCaughtUp(t, b, 120*time.Second)
			episodes++
			recoveries = append(recoveries, fmt.Sprintf("%s:detected=%s,recovered=%s", mode, detected.Round(100*time.Millisecond), time.Since(healedAt).Round(100*time.Millisecond)))
		}
	}
	w.halt()
	a.WaitCaughtUp(t, b, 60*time.Second)
	lost := compareFold(t, b, a.Fold(t), w)
	a.Terminate(t)
	compareFold(t, b, harness.DumpFold(t, dir), w)
	report(t, "network-partition", "episodes", episodes, "recoveries", len(recoveries), "updatesWritten", w.acked.Load(),
		"updatesLost", lost, "timings", strings.Join(recoveries, ";"))
}

// partitionModes is every partition, or those named in FAULT_PARTITIONS (comma separated).
func partitionModes(t testing.TB) []partition {
	all := []partition{dropConns, blackhole, upOnly, downOnly, halfOpen}
	sel := os.Getenv("FAULT_PARTITIONS")
	if sel == "" {
		return all
	}
	var out []partition
	for name := range strings.SplitSeq(sel, ",") {
		i := slices.IndexFunc(all, func(p partition) bool { return p.String() == name })
		if i < 0 {
			t.Fatalf("FAULT_PARTITIONS: unknown partition %q (want %v)", name, all)
		}
		out = append(out, all[i])
	}
	return out
}
