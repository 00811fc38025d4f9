package kv_test

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/benchdata"
	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Benchmarks run against one shared fixture (internal/testutil/benchdata): a bucket with
// SLIPSTREAM_BENCH_KEYS keys (default 1M) of 256-byte values, built once per process,
// followed by a 100-message delta of rewrites after f.cursor.

type benchFixture struct {
	srv    *natstest.Server
	conn   *kv.Conn
	b      *kv.Bucket
	keys   int
	cursor uint64 // last sequence before the 100-message delta
	err    error
}

var (
	benchOnce sync.Once
	bench     benchFixture
)

func benchKey(i int) string { return benchdata.Key(i) }

func getBench(b *testing.B) *benchFixture {
	b.Helper()
	benchOnce.Do(func() { bench.err = bench.build() })
	if bench.err != nil {
		b.Fatalf("bench fixture: %v", bench.err)
	}
	return &bench
}

func (f *benchFixture) build() error {
	var err error
	if f.srv, f.conn, err = benchdata.Server(); err != nil {
		return err
	}
	f.keys = benchdata.Keys(1_000_000)
	if f.b, err = benchdata.Fill(f.conn, "bench", f.keys); err != nil {
		return err
	}
	st, err := f.b.Status(context.Background())
	if err != nil {
		return err
	}
	f.cursor = st.LastSeq
	delta := make([]string, 100)
	for i := range delta {
		delta[i] = benchKey(i * (f.keys / 100))
	}
	return benchdata.Publish(f.conn, "bench", delta)
}

// BenchmarkWatchFullBucket compares a state-sync watch through pkg/kv with a raw
// jetstream ordered consumer (DeliverLastPerSubject, Consume callback) on the same stream,
// alternating the two in every iteration (round). ratio is the median over the rounds of
// the watch's rate over the raw rate of its round (ratio_min and ratio_max the extremes).
func BenchmarkWatchFullBucket(b *testing.B) {
	f := getBench(b)
	total := f.keys // the 100 delta messages rewrite existing keys
	var kvDur, rawDur time.Duration
	ratios := make([]float64, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var kvD, rawD time.Duration
		if i%2 == 0 {
			rawD = rawWatch(b, f, total)
			kvD = kvWatch(b, f, total)
		} else {
			kvD = kvWatch(b, f, total)
			rawD = rawWatch(b, f, total)
		}
		kvDur += kvD
		rawDur += rawD
		ratios = append(ratios, rawD.Seconds()/kvD.Seconds())
	}
	b.ReportMetric(float64(total*b.N)/kvDur.Seconds(), "kv_msgs/s")
	b.ReportMetric(float64(total*b.N)/rawDur.Seconds(), "raw_msgs/s")
	benchdata.ReportRatios(b, "ratio", ratios)
}

func kvWatch(b *testing.B, f *benchFixture, want int) time.Duration {
	start := time.Now()
	w, err := f.b.Watch(context.Background(), kv.All(), kv.WatchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	// Next, in slices, as the fold loop reads a watch (Updates adds a goroutine hop per
	// update on top, for readers that want a channel).
	n := 0
	var ups []kv.Update
	for synced, ok := false, true; ok && !synced; {
		ups, ok = w.Next(context.Background(), ups, 1<<30, 0)
		for _, u := range ups {
			if u.Op == kv.OpSynced {
				synced = true
				break
			}
			n++
		}
	}
	d := time.Since(start)
	w.Stop()
	if n != want {
		b.Fatalf("kv watch delivered %d, want %d (err %v)", n, want, w.Err())
	}
	return d
}

func rawWatch(b *testing.B, f *benchFixture, want int) time.Duration {
	d, err := benchdata.RawLastPerSubject(f.conn, "KV_bench", want)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// benchFold is the fold of the fixture at its cursor: every fixture key, live.
type benchFold struct{ keys int }

func (f benchFold) Count() (uint64, error) { return uint64(f.keys), nil }
func (f benchFold) Holds(key string) (bool, error) {
	var i int
	_, err := fmt.Sscanf(key, "k.%07d", &i)
	return err == nil && i < f.keys, nil
}
func (f benchFold) Keys() iter.Seq2[kv.KeyState, error] {
	return func(yield func(kv.KeyState, error) bool) {
		for i := 0; i < f.keys; i++ {
			if !yield(kv.KeyState{Key: benchKey(i), Live: true}, nil) {
				return
			}
		}
	}
}

// BenchmarkResumeLatency measures a verified resume on the fixture's stream: time from
// Watch to the 100th message of the 100-message delta, and to OpSynced.
func BenchmarkResumeLatency(b *testing.B) {
	f := getBench(b)
	fold := benchFold{keys: f.keys}
	var toLast, toSynced time.Duration
	checks := kv.ExactChecks()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		w, err := f.b.Watch(context.Background(), kv.All(), kv.WatchOptions{Cursor: f.cursor, Fold: fold})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for u := range w.Updates() {
			if u.Op == kv.OpSynced {
				toSynced += time.Since(start)
				break
			}
			n++
			if n == 100 {
				toLast += time.Since(start)
			}
		}
		w.Stop()
		if n != 100 {
			b.Fatalf("delta of %d messages, want 100 (err %v)", n, w.Err())
		}
	}
	b.ReportMetric(float64(toLast.Microseconds())/float64(b.N)/1000, "ms_to_100th")
	b.ReportMetric(float64(toSynced.Microseconds())/float64(b.N)/1000, "ms_to_synced")
	if c := kv.ExactChecks() - checks; c != 0 {
		b.Errorf("resume ran %d exact checks; the fixture fold should pass the count check", c)
	}
}
