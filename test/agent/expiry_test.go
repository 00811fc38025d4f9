package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// TestCursorExpiryIsCountedAndRecovered lets every message the fold holds age out of a
// MaxAge bucket while the agent is stopped: on restart the agent reports the expiry
// (cursorExpired, resyncs, metrics), re-syncs with the diff, and ends equal to the bucket.
func TestCursorExpiryIsCountedAndRecovered(t *testing.T) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucketWith(t, conn, kv.BucketConfig{Name: "aging", MaxAge: time.Second})
	ctx := context.Background()
	for i := range 5 {
		if _, err := b.Put(ctx, fmt.Sprintf("old.%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	args := []string{"--nats-url", n.URL(), "--bucket", "aging", "--data-dir", dir}
	a := harness.StartAgent(t, args...)
	a.WaitCaughtUp(t, b, 20*time.Second)
	a.Terminate(t)
	proctest.Eventually(t, 20*time.Second, "the old messages to age out", func() error {
		st, err := b.Status(ctx)
		if err != nil {
			return err
		}
		if st.Msgs != 0 {
			return fmt.Errorf("%d messages left", st.Msgs)
		}
		return nil
	})
	// Keep what comes next: a slow restart must not let the new key age out too.
	if _, err := conn.CreateOrUpdateBucket(ctx, kv.BucketConfig{Name: "aging", MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "new.0", []byte("fresh")); err != nil {
		t.Fatal(err)
	}
	a = harness.StartAgent(t, args...)
	st := a.WaitCaughtUp(t, b, 20*time.Second)
	if st.CursorExpired != 1 || st.Resyncs != 1 || st.Keys != 1 {
		t.Fatalf("status after expiry: %+v, want cursorExpired 1, resyncs 1, keys 1", st)
	}
	if err := proctest.Diff(proctest.BucketState(t, b, ""), dumpFoldLive(t, a, dir)); err != nil {
		t.Fatalf("fold != bucket after expiry recovery: %v", err)
	}
}
