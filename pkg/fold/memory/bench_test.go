package memory

import (
	"runtime"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold/foldtest"
)

// BenchmarkApply: 1k-key batches of 256-byte values.
func BenchmarkApply(b *testing.B) {
	for _, mode := range []struct {
		name string
		sync SyncMode
	}{{"sync", SyncEveryApply}, {"nosync", SyncNone}} {
		b.Run(mode.name, func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{Sync: mode.sync, DisableAutoCompact: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			foldtest.BenchApply(b, s, foldtest.BenchKeys(100_000), 1000, 256)
		})
	}
}

func BenchmarkGet(b *testing.B) {
	n := foldtest.BenchKeys(100_000)
	s, err := Open(b.TempDir(), Options{Sync: SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	foldtest.Fill(b, s, n, 256, 1000)
	foldtest.BenchGet(b, s, n)
}

// BenchmarkMemoryOverhead reports the heap a fold of n keys (17-byte keys, 256- and
// 32-byte values) takes, per key and as a multiple of the raw key+value bytes (goal <= 2).
func BenchmarkMemoryOverhead(b *testing.B) {
	for _, size := range []struct {
		name  string
		value int
	}{{"value256", 256}, {"value32", 32}} {
		b.Run(size.name, func(b *testing.B) {
			n := foldtest.BenchKeys(100_000)
			for range b.N {
				dir := b.TempDir()
				before := heap()
				s, err := Open(dir, Options{Sync: SyncNone, DisableAutoCompact: true})
				if err != nil {
					b.Fatal(err)
				}
				foldtest.Fill(b, s, n, size.value, 1000)
				s.Close()
				// Reopen: the loaded fold is the steady state (no batch garbage).
				s, err = Open(dir, Options{Sync: SyncNone})
				if err != nil {
					b.Fatal(err)
				}
				used := heap() - before
				raw := float64(n * (17 + size.value))
				b.ReportMetric(float64(used)/float64(n), "heap-B/key")
				b.ReportMetric(float64(used)/raw, "x-raw")
				runtime.KeepAlive(s)
				s.Close()
			}
		})
	}
}

func heap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
