package export

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/pebble"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

const bootstrapTail = 10_000

// BenchmarkBootstrap: a new node seeded from the benchmark export (checked against NATS)
// plus a 10k-update tail through fold.Loop, against importing the export alone, one after
// the other in each iteration. Reports the medians over the iterations (make bench runs
// three), and x_import = the median of bootstrap time / import time (goal <= 1.5). The
// bucket holds the same keys at the same revisions as the exported fold, so the resume
// from its cursor verifies.
func BenchmarkBootstrap(b *testing.B) {
	benchSetup(b)
	f := &benchFixture
	n := benchKeys(b)
	srv := natstest.Start(b)
	ctx := context.Background()
	conn, err := kv.Connect(ctx, kv.Options{URLs: []string{srv.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	bucket, err := conn.CreateBucket(ctx, kv.BucketConfig{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	js := conn.JetStream()
	val := make([]byte, benchValueSize)
	publish := func(key string, v []byte) {
		if _, err := js.PublishAsync("$KV.bench."+key, v, jetstream.WithExpectStream("KV_bench")); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		for j := range val {
			val[j] = byte(i*31 + j)
		}
		publish(fmt.Sprintf("k.%09d", i), append([]byte(nil), val...))
		if i%1024 == 1023 {
			<-js.PublishAsyncComplete()
		}
	}
	for i := range bootstrapTail {
		publish(fmt.Sprintf("k.%09d", (i*7919)%n), []byte("tail"))
		if i%1024 == 1023 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	st0, err := bucket.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	last := st0.LastSeq
	if last != uint64(n+bootstrapTail) {
		b.Fatalf("bucket at %d, want %d", last, n+bootstrapTail)
	}
	l, err := OpenLocation(ctx, "file://"+f.loc)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	open := func(d string) (fold.Store, error) { return pebble.Open(d, pebble.Options{Sync: pebble.SyncNone}) }

	var importTimes, bootTimes, seedTimes []time.Duration
	var ratios []float64
	b.ResetTimer()
	for range b.N {
		dir := b.TempDir()
		start := time.Now()
		r, err := l.Reader(ctx, f.obj)
		if err != nil {
			b.Fatal(err)
		}
		st, _, err := Import(ctx, r, StagingDir(filepath.Join(dir, "imp")), filepath.Join(dir, "imp"), StageOptions{Open: open})
		r.Close()
		if err != nil {
			b.Fatal(err)
		}
		st.Close()
		importTime := time.Since(start)

		start = time.Now()
		s, err := NewSeeder(SeedConfig{Location: l, Bucket: "bench", Scope: kv.Prefixes("k."), KV: bucket, Dir: filepath.Join(dir, "boot"), Open: open})
		if err != nil {
			b.Fatal(err)
		}
		st, res, err := s.Seed(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		seedTime := time.Since(start)
		c := &counter{}
		lctx, cancel := context.WithCancel(ctx)
		loop := fold.NewLoop(bucket, st, fold.LoopConfig{Scope: kv.Prefixes("k."), Observer: c, Resume: res.Resume})
		done := make(chan struct{})
		go func() { defer close(done); _, _ = loop.Run(lctx) }()
		tick := time.NewTicker(5 * time.Millisecond)
		for st.State().Cursor < last {
			<-tick.C
		}
		tick.Stop()
		bootTime := time.Since(start)
		cancel()
		<-done
		st.Close()
		if updates, _, _, _ := c.snapshot(); updates != bootstrapTail {
			b.Fatalf("bootstrap received %d updates, want the tail of %d", updates, bootstrapTail)
		}
		if n := loop.WatchesStarted(); n != 0 {
			b.Fatalf("the loop started %d watches of its own: the seed's verified watch was not continued", n)
		}
		importTimes, seedTimes, bootTimes = append(importTimes, importTime), append(seedTimes, seedTime), append(bootTimes, bootTime)
		ratios = append(ratios, bootTime.Seconds()/importTime.Seconds())
	}
	median := func(xs []float64) float64 {
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	seconds := func(ds []time.Duration) float64 {
		xs := make([]float64, len(ds))
		for i, d := range ds {
			xs[i] = d.Seconds()
		}
		return median(xs)
	}
	b.ReportMetric(seconds(importTimes), "import_s")
	b.ReportMetric(seconds(bootTimes), "bootstrap_s")
	// The bootstrap's two parts: the seed (download, verify, stage, the resume check
	// against NATS, swap) and the loop taking the tail.
	b.ReportMetric(seconds(seedTimes), "seed_s")
	tails := make([]time.Duration, len(bootTimes))
	for i := range tails {
		tails[i] = bootTimes[i] - seedTimes[i]
	}
	b.ReportMetric(seconds(tails), "tail_s")
	b.ReportMetric(median(ratios), "x_import")
}
