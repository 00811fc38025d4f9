package fold_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/benchdata"
	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/memory"
	"github.com/slipstream-dev/slipstream/pkg/fold/pebble"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Both backends run with SyncNone (durability left to the OS and Close; a crash loses the
// last batches, never tears one), so the figures compare folding work, not fsync latency
// (SLIPSTREAM_BENCH_SYNC=1 fsyncs every Apply instead).
//
// Benchmarks share one server holding two buckets: "big" with SLIPSTREAM_BENCH_KEYS keys
// (default 1M) and "small" with a tenth of that, 256-byte values, each written in key
// order. SLIPSTREAM_BENCH_ORDER=shuffled writes the big bucket's keys in a fixed random
// order instead, so that a catch-up delivers them in no particular key order (the restart
// benchmarks need key order: they check each key's revision).

type foldBench struct {
	srv        *natstest.Server
	conn       *kv.Conn
	big, small *kv.Bucket
	nBig       int
	nSmall     int
	err        error
}

var (
	foldBenchOnce sync.Once
	fb            foldBench
)

func getFoldBench(b *testing.B) *foldBench {
	b.Helper()
	foldBenchOnce.Do(func() {
		fb.nBig = benchdata.Keys(1_000_000)
		fb.nSmall = max(fb.nBig/10, 1)
		var shuffled bool
		switch order := os.Getenv("SLIPSTREAM_BENCH_ORDER"); order {
		case "", "key":
		case "shuffled":
			shuffled = true
		default:
			fb.err = fmt.Errorf("SLIPSTREAM_BENCH_ORDER=%q: want key or shuffled", order)
			return
		}
		fb.srv, fb.conn, fb.err = benchdata.Server()
		if fb.err != nil {
			return
		}
		if shuffled {
			fb.big, fb.err = benchdata.FillShuffled(fb.conn, "big", fb.nBig, 1)
		} else {
			fb.big, fb.err = benchdata.Fill(fb.conn, "big", fb.nBig)
		}
		if fb.err != nil {
			return
		}
		fb.small, fb.err = benchdata.Fill(fb.conn, "small", fb.nSmall)
	})
	if fb.err != nil {
		b.Fatalf("bench fixture: %v", fb.err)
	}
	return &fb
}

// untilEvent runs a loop over store until the observer sees kind, then stops it and
// returns the elapsed time and the number of updates applied.
func untilEvent(b *testing.B, bucket *kv.Bucket, store fold.Store, kind fold.EventKind) (time.Duration, int) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs := &stopObserver{kind: kind, done: make(chan struct{})}
	start := time.Now()
	l := fold.NewLoop(bucket, store, fold.LoopConfig{Observer: obs})
	errc := make(chan error, 1)
	go func() {
		_, err := l.Run(ctx)
		errc <- err
	}()
	select {
	case <-obs.done:
	case err := <-errc:
		b.Fatalf("loop ended before %s: %v", kind, err)
	case <-time.After(10 * time.Minute):
		b.Fatalf("no %s within 10 minutes", kind)
	}
	d := time.Since(start)
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return d, obs.applied
}

type stopObserver struct {
	kind    fold.EventKind
	done    chan struct{}
	once    sync.Once
	applied int
}

func (o *stopObserver) Applied(_ fold.Progress, batch []kv.Update) { o.applied += len(batch) }
func (o *stopObserver) Event(e fold.Event) {
	if e.Kind == o.kind {
		o.once.Do(func() { close(o.done) })
	}
}

func rawCatchUp(b *testing.B, conn *kv.Conn, stream string, want int) time.Duration {
	d, err := benchdata.RawLastPerSubject(conn, stream, want)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// benchSync: SLIPSTREAM_BENCH_SYNC=1 runs the catch-up folds with an fsync per Apply
// (the backends' default) instead of SyncNone.
func benchSync() bool { return os.Getenv("SLIPSTREAM_BENCH_SYNC") == "1" }

func openPebble(b *testing.B, dir string) fold.Store {
	b.Helper()
	o := pebble.Options{Sync: pebble.SyncNone}
	if benchSync() {
		o.Sync = pebble.SyncEveryApply
	}
	s, err := pebble.Open(dir, o)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func openMem(b *testing.B, dir string) fold.Store {
	b.Helper()
	o := memory.Options{Sync: memory.SyncNone}
	if benchSync() {
		o.Sync = memory.SyncEveryApply
	}
	s, err := memory.Open(dir, o)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkCatchUp folds the whole big bucket from an empty store into each backend and
// compares the rate with a raw ordered consumer that only counts messages, in the same run.
// Each iteration is a round of one raw pass and one fold per backend, in an order that
// rotates from round to round; <backend>_ratio is the median over the rounds of the
// backend's rate over the raw rate of its own round (_ratio_min and _ratio_max the
// extremes). One pass of the same code swings by 10-20% between rounds on a shared 2-core
// machine, so a single round says little. Besides the rates it reports the process CPU time
// per message of each phase (server and client share the process): on a loaded machine
// wall-clock ratios drift with the load, CPU per message much less.
func BenchmarkCatchUp(b *testing.B) {
	f := getFoldBench(b)
	type phase struct {
		wall, cpu     time.Duration
		alloc, cycles uint64
	}
	phases := map[string]*phase{}
	measure := func(name string, run func() time.Duration) time.Duration {
		p := phases[name]
		if p == nil {
			p = &phase{}
			phases[name] = p
		}
		c0 := cpuTime(b)
		a0, n0 := heapAllocs()
		d := run()
		p.wall += d
		p.cpu += cpuTime(b) - c0
		a1, n1 := heapAllocs()
		p.alloc += a1 - a0
		p.cycles += n1 - n0
		return d
	}
	backends := benchBackends()
	order := append([]string{"raw"}, backends...)
	ratios := map[string][]float64{}
	for i := 0; i < b.N; i++ {
		round := map[string]time.Duration{}
		for j := range order {
			name := order[(i+j)%len(order)]
			if name == "raw" {
				round[name] = measure(name, func() time.Duration { return rawCatchUp(b, f.conn, f.big.Stream(), f.nBig) })
				continue
			}
			dir := b.TempDir()
			var s fold.Store
			if name == "memory" {
				s = openMem(b, dir)
			} else {
				s = openPebble(b, dir)
			}
			round[name] = measure(name, func() time.Duration {
				d, n := untilEvent(b, f.big, s, fold.EventSynced)
				if n != f.nBig {
					b.Fatalf("%s fold applied %d updates, want %d", name, n, f.nBig)
				}
				return d
			})
			_ = s.Close()
			_ = os.RemoveAll(dir)
		}
		for _, backend := range backends {
			// Equal message counts: the ratio of rates is the inverse ratio of durations.
			ratios[backend] = append(ratios[backend], round["raw"].Seconds()/round[backend].Seconds())
		}
	}
	msgs := float64(f.nBig * b.N)
	rate := func(p *phase) float64 { return msgs / p.wall.Seconds() }
	perMsg := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / msgs }
	raw := phases["raw"]
	b.ReportMetric(rate(raw), "raw_msgs/s")
	b.ReportMetric(perMsg(raw.cpu), "raw_cpu_us/msg")
	b.ReportMetric(float64(raw.alloc)/msgs, "raw_alloc_B/msg")
	b.ReportMetric(float64(raw.cycles)/float64(b.N), "raw_gc_cycles")
	for _, backend := range backends {
		p := phases[backend]
		b.ReportMetric(rate(p), backend+"_msgs/s")
		benchdata.ReportRatios(b, backend+"_ratio", ratios[backend])
		b.ReportMetric(perMsg(p.cpu), backend+"_cpu_us/msg")
		b.ReportMetric(float64(p.alloc)/msgs, backend+"_alloc_B/msg")
		b.ReportMetric(float64(p.cycles)/float64(b.N), backend+"_gc_cycles")
	}
}

// heapAllocs returns the bytes allocated on the heap and the GC cycles completed so far
// (by the whole process: the in-process server's garbage counts too).
func heapAllocs() (bytes, cycles uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() != metrics.KindUint64 {
			return 0, 0
		}
	}
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// benchBackends are the backends BenchmarkCatchUp folds into: SLIPSTREAM_BENCH_BACKENDS
// (comma-separated, e.g. "memory" to profile one), default both.
func benchBackends() []string {
	if v := os.Getenv("SLIPSTREAM_BENCH_BACKENDS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"memory", "pebble"}
}

// cpuTime is the CPU time (user + system) the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRestart measures open-to-verified of a pebble fold with 1,000 updates written
// since its checkpoint, for the big and the small bucket: the cost should follow the delta,
// not the size of the fold. Each iteration restarts each fold restartRounds times,
// alternating, and the figures are the medians: one restart of 20-30 ms is at the mercy
// of a scheduling hiccup on a shared 2-core machine.
func BenchmarkRestart(b *testing.B) {
	const restartRounds = 5
	f := getFoldBench(b)
	type fixture struct {
		bucket *kv.Bucket
		n      int
		dir    string
		took   []time.Duration
	}
	fixtures := []*fixture{{bucket: f.big, n: f.nBig}, {bucket: f.small, n: f.nSmall}}
	for _, fx := range fixtures {
		fx.dir = filepath.Join(b.TempDir(), fx.bucket.Name())
		s := openPebble(b, fx.dir)
		untilEvent(b, fx.bucket, s, fold.EventSynced)
		_ = s.Close()
		// One untimed restart: the first open after a bulk load pays for Pebble settling
		// its fresh tables, which a node restarting in service does not.
		s = openPebble(b, fx.dir)
		untilEvent(b, fx.bucket, s, fold.EventSynced)
		_ = s.Close()
	}
	delta := make([]string, 1000)
	b.ResetTimer()
	for i := 0; i < b.N*restartRounds; i++ {
		for _, fx := range fixtures {
			b.StopTimer()
			for j := range delta {
				delta[j] = benchdata.Key((i*len(delta) + j) % fx.n) // distinct while n >= 1000
			}
			if err := benchdata.Publish(f.conn, fx.bucket.Name(), delta); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			s := openPebble(b, fx.dir)
			_, n := untilEvent(b, fx.bucket, s, fold.EventSynced)
			fx.took = append(fx.took, time.Since(start))
			if n != len(delta) {
				b.Fatalf("restart of the %d-key fold applied %d updates, want the %d-update delta", fx.n, n, len(delta))
			}
			_ = s.Close()
		}
	}
	ms := func(ds []time.Duration) float64 { return float64(benchdata.Median(ds).Microseconds()) / 1000 }
	big, small := ms(fixtures[0].took), ms(fixtures[1].took)
	b.ReportMetric(big, "big_restart_ms")
	b.ReportMetric(small, "small_restart_ms")
	b.ReportMetric(big/small, "big/small")
}

// BenchmarkResyncDiff compares a full resync with diff of a big pebble fold with a plain
// full replay into an empty store.
func BenchmarkResyncDiff(b *testing.B) {
	f := getFoldBench(b)
	dir := b.TempDir()
	s := openPebble(b, dir)
	untilEvent(b, f.big, s, fold.EventSynced)
	_ = s.Close()
	var resync, replay time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := openPebble(b, dir)
		if err := s.Apply(nil, fold.State{Resyncing: true}); err != nil {
			b.Fatal(err)
		}
		d, _ := untilEvent(b, f.big, s, fold.EventResyncDone)
		resync += d
		_ = s.Close()

		fresh := b.TempDir()
		s = openPebble(b, fresh)
		d, _ = untilEvent(b, f.big, s, fold.EventSynced)
		replay += d
		_ = s.Close()
		_ = os.RemoveAll(fresh)
	}
	b.ReportMetric(resync.Seconds()/float64(b.N), "resync_s")
	b.ReportMetric(replay.Seconds()/float64(b.N), "replay_s")
	b.ReportMetric(resync.Seconds()/replay.Seconds(), "ratio")
}
