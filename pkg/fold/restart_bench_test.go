package fold_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstream-dev/slipstream/internal/testutil/benchdata"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// restartDelta is the number of updates written between a checkpoint and each restart.
const restartDelta = 1000

// BenchmarkRestartVsNaive compares restarting a pebble fold of SLIPSTREAM_BENCH_KEYS keys
// (default 1M, 256-byte values) that is restartDelta updates behind the bucket with what a
// user would write without Slipstream: a nats.go jetstream KeyValue.WatchAll into a map,
// which has to replay the whole bucket on every restart.
//
// The bucket is filled through NATS (benchdata.Fill). The fold is written straight into the
// store with the keys, values and revisions the bucket holds and the bucket's last sequence
// as its cursor: the state the loop would have reached, without paying for a full catch-up
// (which BenchmarkCatchUp measures). An untimed first restart checks that the fold resumes
// from that cursor without a resync (the verified resume accepts it) and lets Pebble settle
// its freshly written tables, as a node restarting in service would find them.
//
// Each timed restart (SLIPSTREAM_BENCH_RESTARTS, default 5) publishes a fresh delta first,
// then measures store open + loop until Synced. The naive replay runs 3 times up to 1M keys,
// once above. Medians are reported.
func BenchmarkRestartVsNaive(b *testing.B) {
	n := benchdata.Keys(1_000_000)
	if n < restartDelta {
		b.Fatalf("SLIPSTREAM_BENCH_KEYS=%d: the restart benchmark needs at least %d keys", n, restartDelta)
	}
	restarts := 5
	if v := os.Getenv("SLIPSTREAM_BENCH_RESTARTS"); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil || r <= 0 {
			b.Fatalf("SLIPSTREAM_BENCH_RESTARTS=%q: want a positive integer", v)
		}
		restarts = r
	}
	naiveRuns := 3
	if n > 1_000_000 {
		naiveRuns = 1
	}
	srv, conn, err := benchdata.Server()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	defer conn.Close()
	bucket, err := benchdata.Fill(conn, "restart", n)
	if err != nil {
		b.Fatal(err)
	}
	checkRevisions(b, bucket, n)
	dir := b.TempDir()
	s := openPebble(b, dir)
	fillLikeBucket(b, s, n)
	_ = s.Close()

	s = openPebble(b, dir)
	if _, applied := untilEvent(b, bucket, s, fold.EventSynced); applied != 0 {
		b.Fatalf("first restart of the directly built fold applied %d updates, want 0", applied)
	}
	_ = s.Close()

	var slip, naive []time.Duration
	delta := make([]string, restartDelta)
	b.ResetTimer()
	for range b.N {
		for r := range restarts {
			b.StopTimer()
			for j := range delta {
				delta[j] = benchdata.Key((r*restartDelta + j*7919) % n)
			}
			slices.Sort(delta)
			delta = slices.Compact(delta)
			if len(delta) != restartDelta {
				b.Fatalf("delta of %d distinct keys, want %d", len(delta), restartDelta)
			}
			if err := benchdata.Publish(conn, bucket.Name(), delta); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			s := openPebble(b, dir)
			_, applied := untilEvent(b, bucket, s, fold.EventSynced)
			slip = append(slip, time.Since(start))
			if applied != restartDelta {
				b.Fatalf("restart of the %d-key fold applied %d updates, want the %d-update delta", n, applied, restartDelta)
			}
			_ = s.Close()
		}
		for range naiveRuns {
			naive = append(naive, naiveReplay(b, conn, bucket.Name(), n))
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(float64(n), "keys")
	b.ReportMetric(ms(benchdata.Median(slip)), "restart_ms")
	b.ReportMetric(ms(slices.Max(slip)), "restart_max_ms")
	b.ReportMetric(ms(benchdata.Median(naive)), "naive_ms")
	b.ReportMetric(ms(benchdata.Median(slip))/ms(benchdata.Median(naive)), "ratio")
}

// checkRevisions fails unless a sample of the bucket's keys sits at the revision
// fillLikeBucket gives them (i+1 for Key(i): Fill publishes in order into a new stream).
func checkRevisions(b *testing.B, bucket *kv.Bucket, n int) {
	b.Helper()
	st, err := bucket.Status(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if st.LastSeq != uint64(n) {
		b.Fatalf("bucket at sequence %d after filling %d keys", st.LastSeq, n)
	}
	for _, i := range []int{0, n / 3, n / 2, n - 1} {
		e, err := bucket.Entry(context.Background(), benchdata.Key(i))
		if err != nil {
			b.Fatal(err)
		}
		if e.Revision != uint64(i+1) {
			b.Fatalf("%s at revision %d, want %d", benchdata.Key(i), e.Revision, i+1)
		}
	}
}

// fillLikeBucket writes Key(i) = Value(i) at revision i+1 for every i < n into an empty
// store in 1,000-key batches, as a first state sync would (puts whose Prior is fold.Absent), cursor n.
func fillLikeBucket(b *testing.B, s fold.Store, n int) {
	b.Helper()
	muts := make([]fold.Mutation, 0, 1000)
	for i := 0; i < n; {
		muts = muts[:0]
		for ; len(muts) < cap(muts) && i < n; i++ {
			muts = append(muts, fold.Mutation{Op: fold.MutPut, Key: benchdata.Key(i), Value: benchdata.Value(i), Revision: uint64(i + 1), Prior: fold.Absent})
		}
		if err := s.Apply(muts, fold.State{Cursor: uint64(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// naiveReplay is the restart without Slipstream: open the bucket with nats.go's jetstream
// KeyValue and WatchAll into a map until the initial values are done (the nil entry), and
// returns the time taken. (The map's heap is not reported: the embedded nats-server shares
// the process heap, so no heap delta isolates it.)
func naiveReplay(b *testing.B, conn *kv.Conn, bucket string, want int) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	kvh, err := conn.JetStream().KeyValue(ctx, bucket)
	if err != nil {
		b.Fatal(err)
	}
	w, err := kvh.WatchAll(ctx)
	if err != nil {
		b.Fatal(err)
	}
	m := make(map[string][]byte)
	for e := range w.Updates() {
		if e == nil {
			break
		}
		switch e.Operation() {
		case jetstream.KeyValuePut:
			m[e.Key()] = e.Value()
		default:
			delete(m, e.Key())
		}
	}
	d := time.Since(start)
	_ = w.Stop()
	if ctx.Err() != nil {
		b.Fatalf("naive replay: %v after %d keys", ctx.Err(), len(m))
	}
	if len(m) != want {
		b.Fatalf("naive replay holds %d keys, want %d", len(m), want)
	}
	return d
}
