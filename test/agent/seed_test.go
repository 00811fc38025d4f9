package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/internal/testutil/s3test"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// exportNow triggers an export on a (the lease holder) and waits until its lastExport is at
// cursor; it returns the export's object key.
func exportNow(t *testing.T, a *proctest.Agent, cursor uint64) string {
	t.Helper()
	proctest.Eventually(t, 20*time.Second, "POST /v1/export accepted", func() error {
		if code, why := postExport(t, a); code != http.StatusAccepted {
			return fmt.Errorf("%d %s", code, why)
		}
		return nil
	})
	var obj string
	proctest.Eventually(t, 30*time.Second, fmt.Sprintf("an export at cursor %d", cursor), func() error {
		st, err := fetchRawStatus(a)
		if err != nil {
			return err
		}
		if st.LastExport == nil || st.LastExport.Cursor != cursor {
			return fmt.Errorf("lastExport %+v (lastError %q)", st.LastExport, st.LastError)
		}
		obj = st.LastExport.Object
		return nil
	})
	return obj
}

// TestSeedNewAgentTakesOnlyTheTail: agent A folds a bucket and exports it; more writes
// follow; a new agent B with an empty data directory and the same --export-url seeds from
// the export and receives from NATS exactly the tail after the export's cursor (its
// applied-updates counters equal the tail), with no full resync, and ends equal to the
// bucket. Once over file://, once over a real S3 server (SeaweedFS).
func TestSeedNewAgentTakesOnlyTheTail(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		testSeedTail(t, "file://"+t.TempDir())
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t, "exports")
		srv.SetEnv(t)
		testSeedTail(t, srv.URL("exports"))
	})
}

func testSeedTail(t *testing.T, url string) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "fleet")
	ctx := context.Background()
	putN(t, b, "node", 200)
	a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "fleet", "--data-dir", t.TempDir(), "--export-url", url, "--export-holder", "a")
	a.WaitCaughtUp(t, b, 30*time.Second)
	obj := exportNow(t, a, 200)

	// The tail: 25 puts (new keys and overwrites) and 5 deletes after the export's cursor.
	putN(t, b, "late", 20)
	putN(t, b, "node", 5)
	for i := range 5 {
		if _, err := b.Delete(ctx, fmt.Sprintf("node.%03d", 100+i)); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	bAgent := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "fleet", "--data-dir", dir, "--export-url", url, "--export-holder", "b")
	st := bAgent.WaitCaughtUp(t, b, 60*time.Second)
	if st.Cursor != 230 {
		t.Fatalf("B cursor %d, want 230", st.Cursor)
	}
	raw, err := fetchRawStatus(bAgent)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(raw.SeededFrom, "/"+obj) || raw.Resyncs != 0 || raw.CursorExpired != 0 {
		t.Fatalf("B status: seededFrom %q resyncs %d cursorExpired %d; want seeded from %s, no resync", raw.SeededFrom, raw.Resyncs, raw.CursorExpired, obj)
	}
	if !strings.Contains(bAgent.Output(), "phase=Seeding") || !strings.Contains(bAgent.Output(), "seeded fold from export") {
		t.Fatalf("B never went through phase Seeding:\n%s", proctest.Tail(bAgent.Output(), 4000))
	}
	puts := bAgent.MustMetric(t, `slipstream_updates_applied_total{op="put"}`)
	dels := bAgent.MustMetric(t, `slipstream_updates_applied_total{op="delete"}`)
	if puts != 25 || dels != 5 {
		t.Fatalf("B applied %v puts and %v deletes from NATS, want exactly the tail: 25 and 5", puts, dels)
	}
	if s := bAgent.MustMetric(t, `slipstream_seeds_total{source="export"}`); s != 1 {
		t.Fatalf("seeds_total{source=export} = %v, want 1", s)
	}
	if r := bAgent.MustMetric(t, `slipstream_resyncs_total{mode="full"}`); r != 0 {
		t.Fatalf("resyncs_total{mode=full} = %v, want 0", r)
	}
	if err := proctest.Diff(proctest.BucketState(t, b, ""), dumpFoldLive(t, bAgent, dir)); err != nil {
		t.Fatalf("seeded fold != bucket: %v", err)
	}
}

// TestSeedAfterCursorExpiry: agent B's cursor expires while it is stopped (a short MaxAge
// evicts everything it had; meanwhile keys are written and deleted). On restart B seeds
// from the newest export NATS can continue from (phase Seeding, resyncs{mode=seed}) and
// ends equal to the bucket; without a usable export it falls back to a full resync.
func TestSeedAfterCursorExpiry(t *testing.T) {
	for _, withExport := range []bool{true, false} {
		t.Run(fmt.Sprintf("export=%v", withExport), func(t *testing.T) {
			testSeedAfterExpiry(t, withExport)
		})
	}
}

func testSeedAfterExpiry(t *testing.T, withExport bool) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	ctx := context.Background()
	b := proctest.CreateBucketWith(t, conn, kv.BucketConfig{Name: "aging", MaxAge: time.Second})
	putN(t, b, "old", 10)
	url := "file://" + t.TempDir()
	dir := t.TempDir()
	args := []string{"--nats-url", n.URL(), "--bucket", "aging", "--data-dir", dir, "--export-url", url, "--export-holder", "b"}
	bAgent := harness.StartAgent(t, args...)
	bAgent.WaitCaughtUp(t, b, 20*time.Second)
	bAgent.Terminate(t)
	proctest.Eventually(t, 20*time.Second, "B's messages to age out", func() error {
		st, err := b.Status(ctx)
		if err != nil {
			return err
		}
		if st.Msgs != 0 {
			return fmt.Errorf("%d messages left", st.Msgs)
		}
		return nil
	})
	// Keep what comes next: writes and deletes while B is away.
	if _, err := conn.CreateOrUpdateBucket(ctx, kv.BucketConfig{Name: "aging", MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	putN(t, b, "new", 10)
	for _, k := range []string{"new.003", "new.007"} {
		if _, err := b.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if withExport {
		a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "aging", "--data-dir", t.TempDir(), "--export-url", url, "--export-holder", "a")
		bs, err := b.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a.WaitCaughtUp(t, b, 20*time.Second)
		exportNow(t, a, bs.LastSeq)
		a.Terminate(t)
	}
	// A tail after the export.
	putN(t, b, "tail", 3)
	if _, err := b.Delete(ctx, "new.001"); err != nil {
		t.Fatal(err)
	}

	bAgent = harness.StartAgent(t, args...)
	bAgent.WaitCaughtUp(t, b, 30*time.Second)
	raw, err := fetchRawStatus(bAgent)
	if err != nil {
		t.Fatal(err)
	}
	seed := bAgent.MustMetric(t, `slipstream_resyncs_total{mode="seed"}`)
	full := bAgent.MustMetric(t, `slipstream_resyncs_total{mode="full"}`)
	if raw.CursorExpired != 1 {
		t.Fatalf("cursorExpired %d, want 1", raw.CursorExpired)
	}
	if withExport && (seed != 1 || full != 0 || raw.SeededFrom == "" || raw.Resyncs != 0) {
		t.Fatalf("after expiry with an export: resyncs seed %v full %v, status resyncs %d seededFrom %q; want seeded, no full resync", seed, full, raw.Resyncs, raw.SeededFrom)
	}
	if !withExport && (seed != 0 || full != 1 || raw.SeededFrom != "" || raw.Resyncs != 1) {
		t.Fatalf("after expiry without exports: resyncs seed %v full %v, status resyncs %d seededFrom %q; want one full resync", seed, full, raw.Resyncs, raw.SeededFrom)
	}
	if err := proctest.Diff(proctest.BucketState(t, b, ""), dumpFoldLive(t, bAgent, dir)); err != nil {
		t.Fatalf("fold != bucket after expiry recovery: %v", err)
	}
}
