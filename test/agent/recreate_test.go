package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
)

// TestBucketDeletedAndRecreated: deleting the bucket under a Live agent turns it Degraded
// (still serving, stale); recreating it with other contents brings the fold back equal to
// the new bucket by itself.
func TestBucketDeletedAndRecreated(t *testing.T) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	ctx := context.Background()
	b := proctest.CreateBucket(t, conn, "phoenix")
	for i := range 20 {
		if _, err := b.Put(ctx, fmt.Sprintf("gen1.%02d", i), []byte("one")); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "phoenix", "--data-dir", dir)
	a.WaitCaughtUp(t, b, 20*time.Second)
	if err := conn.DeleteBucket(ctx, "phoenix"); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 15*time.Second, "Degraded after the bucket was deleted", func() error {
		st, err := a.Status()
		if err != nil {
			return err
		}
		if st.Phase != "Degraded" || !strings.Contains(strings.ToLower(st.LastError), "not found") {
			return fmt.Errorf("phase %s lastError %q", st.Phase, st.LastError)
		}
		return nil
	})
	b = proctest.CreateBucket(t, conn, "phoenix")
	for i := range 5 {
		if _, err := b.Put(ctx, fmt.Sprintf("gen2.%02d", i), []byte("two")); err != nil {
			t.Fatal(err)
		}
	}
	a.WaitCaughtUp(t, b, 30*time.Second)
	proctest.Eventually(t, 15*time.Second, "fold equal to the recreated bucket", func() error {
		st, err := a.Status()
		if err != nil {
			return err
		}
		if st.Keys != 5 {
			return fmt.Errorf("%d keys, want 5 (phase %s)", st.Keys, st.Phase)
		}
		return nil
	})
	if err := proctest.Diff(proctest.BucketState(t, b, ""), dumpFoldLive(t, a, dir)); err != nil {
		t.Fatalf("fold != recreated bucket: %v", err)
	}
}
