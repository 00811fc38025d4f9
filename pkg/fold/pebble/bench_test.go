package pebble

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/foldtest"
)

// BenchmarkApply: 1k-key batches of 256-byte values.
func BenchmarkApply(b *testing.B) {
	for _, mode := range []struct {
		name string
		sync SyncMode
	}{{"sync", SyncEveryApply}, {"nosync", SyncNone}} {
		b.Run(mode.name, func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{Sync: mode.sync, Logger: silent{}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			foldtest.BenchApply(b, s, foldtest.BenchKeys(1_000_000), 1000, 256)
		})
	}
}

var getFixture struct {
	once sync.Once
	dir  string
	n    int
	err  error
}

// BenchmarkGetP99 reads random keys of a fold of SLIPSTREAM_BENCH_KEYS (default 1M) keys
// with 256-byte values, reopened so that reads come from sstables (goal: p99 < 20us). It
// also reports block-cache misses per Get: with the default cache most Gets miss, and
// even a cache that holds the whole fold misses on a third of them (the first read of
// each block after the reopen), so p99 is the latency of a Get that misses.
func BenchmarkGetP99(b *testing.B) {
	benchGet(b, Options{Logger: silent{}}, false)
}

// BenchmarkGetP99Cached is BenchmarkGetP99 with a block cache that holds the whole fold,
// filled by one pass over every key before timing: the floor of a Get that hits, to tell
// the cost of misses from the cost of the read path itself.
func BenchmarkGetP99Cached(b *testing.B) {
	benchGet(b, Options{Logger: silent{}, CacheSize: int64(foldtest.BenchKeys(1_000_000)) * 512}, true)
}

func benchGet(b *testing.B, opts Options, warm bool) {
	f := &getFixture
	f.once.Do(func() {
		f.n = foldtest.BenchKeys(1_000_000)
		// Shared by every b.N round (b.TempDir would vanish after the first); TestMain
		// removes it.
		f.dir, f.err = os.MkdirTemp("", "slipstream-bench-*") //nolint:usetesting // see above
		if f.err != nil {
			return
		}
		s, err := Open(f.dir, Options{Sync: SyncNone, Logger: silent{}})
		if err != nil {
			f.err = err
			return
		}
		foldtest.Fill(b, s, f.n, 256, 1000)
		f.err = s.Close()
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	s, err := Open(f.dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	settle(b, s)
	if warm {
		for i := range f.n {
			if _, ok, err := s.Get(foldtest.BenchKey(i)); err != nil || !ok {
				b.Fatalf("warm the cache: get: ok=%v err=%v", ok, err)
			}
		}
	}
	before := s.db.Metrics().BlockCache.Misses
	foldtest.BenchGet(b, s, f.n)
	b.ReportMetric(float64(s.db.Metrics().BlockCache.Misses-before)/float64(b.N), "misses/op")
}

// settle compacts the whole key space once and waits for Pebble's background work to
// stop, so that reads are measured on a fold at rest, not against compactions the fill
// left owed. (Pebble's compaction debt estimate need not reach zero on its own: waiting
// for it did not end within 5 minutes on an idle machine.)
func settle(b *testing.B, s *Store) {
	b.Helper()
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatalf("compact the fold before reading: %v", err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for s.db.Metrics().Compact.NumInProgress > 0 {
		if time.Now().After(deadline) {
			b.Fatal("compactions still running 5 minutes after a full compaction")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if getFixture.dir != "" {
		os.RemoveAll(getFixture.dir)
	}
	os.Exit(code)
}

// BenchmarkPeakRSS folds SLIPSTREAM_RSS_KEYS (default 5M) keys of 256 bytes into a fresh
// store in 1k-key batches, reopens it, reads 100k random keys, and reports the process's
// peak resident set (VmHWM) in MiB (goal: under 300 MiB at 5M keys). Run it alone: the
// figure is the whole test process.
func BenchmarkPeakRSS(b *testing.B) {
	n := 5_000_000
	if v, err := strconv.Atoi(os.Getenv("SLIPSTREAM_RSS_KEYS")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		dir := b.TempDir()
		fillClosed(b, dir, n)
		s, err := Open(dir, Options{Logger: silent{}})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for range 100_000 {
			if _, ok, err := s.Get(foldtest.BenchKey(rng.IntN(n))); err != nil || !ok {
				b.Fatalf("get: ok=%v err=%v", ok, err)
			}
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "keys")
	b.ReportMetric(peakRSSMiB(b), "peak_rss_MiB")
}

// fillClosed folds n keys of 256 bytes into a new store in dir, in 1k-key batches, and
// closes it.
func fillClosed(b *testing.B, dir string, n int) {
	b.Helper()
	s, err := Open(dir, Options{Sync: SyncNone, Logger: silent{}})
	if err != nil {
		b.Fatal(err)
	}
	foldtest.Fill(b, s, n, 256, 1000)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}

// peakRSSMiB reads VmHWM from /proc/self/status.
func peakRSSMiB(b *testing.B) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkApplyReplacing: batches of 1,000 puts to existing keys of a 1M-key fold
// (SLIPSTREAM_BENCH_KEYS), each run on the fold reopened (cold block cache): what a
// seeded node's tail or a restart's delta costs. Reports the time per batch with the
// replaced entries read ahead in parallel (readPriors) and, as the baseline in the same
// run, read one by one, alternating.
func BenchmarkApplyReplacing(b *testing.B) {
	n := foldtest.BenchKeys(1_000_000)
	dir := b.TempDir()
	fillClosed(b, dir, n)
	defer func(old int) { parallelPriors = old }(parallelPriors)
	rng := rand.New(rand.NewPCG(3, 4))
	val := make([]byte, 256)
	rev := uint64(n)
	var took [2]time.Duration // parallel, one by one
	batches := 0
	b.ResetTimer()
	for i := range 2 * b.N {
		mode := i % 2
		parallelPriors = []int{256, 1 << 30}[mode]
		s, err := Open(dir, Options{Sync: SyncNone, Logger: silent{}})
		if err != nil {
			b.Fatal(err)
		}
		for range 10 {
			muts := make([]fold.Mutation, 1000)
			for j := range muts {
				rev++
				muts[j] = fold.Mutation{Op: fold.MutPut, Key: foldtest.BenchKey(rng.IntN(n)), Value: val, Revision: rev}
			}
			t0 := time.Now()
			if err := s.Apply(muts, fold.State{Cursor: rev}); err != nil {
				b.Fatal(err)
			}
			took[mode] += time.Since(t0)
			batches += mode
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(took[0].Microseconds())/1e3/float64(batches), "parallel_ms/batch")
	b.ReportMetric(float64(took[1].Microseconds())/1e3/float64(batches), "sequential_ms/batch")
	b.ReportMetric(float64(took[0])/float64(took[1]), "x_sequential")
}
