package agent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
)

// TestCorruptedStoreIsNeverServedAndResyncs damages a memory fold's log in the middle:
// the agent refuses it (moved aside, `agent verify` names the problem) and re-syncs the fold
// from NATS.
func TestCorruptedStoreIsNeverServedAndResyncs(t *testing.T) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "corrupt")
	w := startWriter(t, b, "k.", 50, 0)
	proctest.Eventually(t, 10*time.Second, "writes", func() error {
		if w.acks.Load() < 300 {
			return os.ErrNotExist
		}
		return nil
	})
	w.halt()
	dir := filepath.Join(t.TempDir(), "fold")
	args := []string{"--nats-url", n.URL(), "--bucket", "corrupt", "--data-dir", dir, "--backend", "memory", "--batch-max", "10"}
	a := harness.StartAgent(t, args...)
	a.WaitCaughtUp(t, b, 20*time.Second)
	a.Terminate(t)
	log := filepath.Join(dir, "fold.log")
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(log, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := harness.RunAgent(t, nil, "verify", "--data-dir", dir); code != 3 || !strings.Contains(errOut, "corrupted") {
		t.Fatalf("verify of a damaged fold: exit %d %q, want 3 naming the corruption", code, errOut)
	}
	a = harness.StartAgent(t, args...)
	st := a.WaitCaughtUp(t, b, 20*time.Second)
	if !strings.Contains(st.LastError, "corrupted") {
		t.Fatalf("lastError %q does not report the corruption", st.LastError)
	}
	if err := proctest.Diff(proctest.BucketState(t, b, ""), dumpFoldLive(t, a, dir)); err != nil {
		t.Fatalf("re-synced fold != bucket: %v", err)
	}
	moved, _ := filepath.Glob(dir + ".corrupted-*")
	if len(moved) != 1 {
		t.Fatalf("corrupted store not kept aside: %v", moved)
	}
}
