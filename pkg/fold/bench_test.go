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
// A third fold, cursoronly, stores nothing but the cursor: its ratio is the ceiling the
// watch and loop leave for any store (see benchBackends).
// Each iteration is a round of one raw pass and one fold per backend, in an order that
// rotates from round to round; <backend>_ratio is the median over the rounds of the
// backend's rate over the raw rate of its own round (_ratio_min and _ratio_max the
// extremes). One pass of the same code swings by 10-20% between rounds on a shared 2-core
// machine, so a single round says little. Besides the rates it reports the process CPU time
// per message of each phase (server and client share the process): on a loaded machine
// wall-clock ratios drift with the load, CPU per message much less. _gc_us/msg is the
// collector's share of it (the runtime's estimate), and _cores the CPU time over the wall
// time: every phase runs at about the same number of cores (1.6-1.7 of the 2 here), so a
// phase's rate follows the inverse of its CPU per message, and the fold's ratio is about
// raw_cpu_us/msg over its own.
func BenchmarkCatchUp(b *testing.B) {
	f := getFoldBench(b)
	type phase struct {
		wall, cpu, gc time.Duration
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
		h0 := heapAllocs()
		d := run()
		p.wall += d
		p.cpu += cpuTime(b) - c0
		h1 := heapAllocs()
		p.alloc += h1.bytes - h0.bytes
		p.cycles += h1.cycles - h0.cycles
		p.gc += h1.gcCPU - h0.gcCPU
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
			switch name {
			case "memory":
				s = openMem(b, dir)
			case "pebble":
				s = openPebble(b, dir)
			case "cursoronly":
				s = cursorOnly{openMem(b, dir)}
			default:
				b.Fatalf("SLIPSTREAM_BENCH_BACKENDS: unknown fold %q (want memory, pebble or cursoronly)", name)
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
	cores := func(p *phase) float64 { return p.cpu.Seconds() / p.wall.Seconds() }
	raw := phases["raw"]
	b.ReportMetric(rate(raw), "raw_msgs/s")
	b.ReportMetric(perMsg(raw.cpu), "raw_cpu_us/msg")
	b.ReportMetric(float64(raw.alloc)/msgs, "raw_alloc_B/msg")
	b.ReportMetric(float64(raw.cycles)/float64(b.N), "raw_gc_cycles")
	b.ReportMetric(perMsg(raw.gc), "raw_gc_us/msg")
	b.ReportMetric(cores(raw), "raw_cores")
	for _, backend := range backends {
		p := phases[backend]
		b.ReportMetric(rate(p), backend+"_msgs/s")
		benchdata.ReportRatios(b, backend+"_ratio", ratios[backend])
		b.ReportMetric(perMsg(p.cpu), backend+"_cpu_us/msg")
		b.ReportMetric(float64(p.alloc)/msgs, backend+"_alloc_B/msg")
		b.ReportMetric(float64(p.cycles)/float64(b.N), backend+"_gc_cycles")
		b.ReportMetric(perMsg(p.gc), backend+"_gc_us/msg")
		b.ReportMetric(cores(p), backend+"_cores")
	}
}

// heapStats are process-wide counters (the in-process server's garbage counts too).
type heapStats struct {
	bytes, cycles uint64        // heap bytes allocated, GC cycles completed
	gcCPU         time.Duration // estimated CPU spent in the collector (mark, assists, pauses)
}

// heapAllocs reads the heapStats so far; zeros where the runtime does not offer a metric.
func heapAllocs() heapStats {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	var h heapStats
	if s[0].Value.Kind() == metrics.KindUint64 && s[1].Value.Kind() == metrics.KindUint64 {
		h.bytes, h.cycles = s[0].Value.Uint64(), s[1].Value.Uint64()
	}
	if s[2].Value.Kind() == metrics.KindFloat64 {
		h.gcCPU = time.Duration(s[2].Value.Float64() * float64(time.Second))
	}
	return h
}

// benchBackends are the folds BenchmarkCatchUp runs: SLIPSTREAM_BENCH_BACKENDS
// (comma-separated, e.g. "memory" to profile one), default all three: both backends, and
// cursoronly, the same watch and loop over a store that records only the cursor.
func benchBackends() []string {
	if v := os.Getenv("SLIPSTREAM_BENCH_BACKENDS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"cursoronly", "memory", "pebble"}
}

// cursorOnly is a memory store that applies each batch's cursor and drops its mutations:
// BenchmarkCatchUp's measure of what the watch and the loop cost before any store work.
// Its folds hold nothing; only their rates mean anything.
type cursorOnly struct{ fold.Store }

func (c cursorOnly) Apply(_ []fold.Mutation, st fold.State) error { return c.Store.Apply(nil, st) }

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
