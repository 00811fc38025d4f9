package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestBucketDeletedAndRecreated: deleting the bucket under a Live agent turns it Degraded
// (still serving, stale); recreating it with other contents brings the fold back equal to
// the new bucket by itself.
func TestBucketDeletedAndRecreated(t *testing.T) {
	n := startNATS(t)
	conn := connect(t, n.url())
	ctx := context.Background()
	b := createBucket(t, conn, "phoenix")
	for i := range 20 {
		if _, err := b.Put(ctx, fmt.Sprintf("gen1.%02d", i), []byte("one")); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	a := startAgent(t, "--nats-url", n.url(), "--bucket", "phoenix", "--data-dir", dir)
	a.waitCaughtUp(t, b, 20*time.Second)
	if err := conn.DeleteBucket(ctx, "phoenix"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "Degraded after the bucket was deleted", func() error {
		st, err := a.status()
		if err != nil {
			return err
		}
		if st.Phase != "Degraded" || !strings.Contains(strings.ToLower(st.LastError), "not found") {
			return fmt.Errorf("phase %s lastError %q", st.Phase, st.LastError)
		}
		return nil
	})
	b = createBucket(t, conn, "phoenix")
	for i := range 5 {
		if _, err := b.Put(ctx, fmt.Sprintf("gen2.%02d", i), []byte("two")); err != nil {
			t.Fatal(err)
		}
	}
	a.waitCaughtUp(t, b, 30*time.Second)
	eventually(t, 15*time.Second, "fold equal to the recreated bucket", func() error {
		st, err := a.status()
		if err != nil {
			return err
		}
		if st.Keys != 5 {
			return fmt.Errorf("%d keys, want 5 (phase %s)", st.Keys, st.Phase)
		}
		return nil
	})
	if err := sameLines(bucketState(t, b, ""), dumpFoldLive(t, a, dir)); err != nil {
		t.Fatalf("fold != recreated bucket: %v", err)
	}
}
