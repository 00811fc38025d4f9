package pebble

import (
	"os"
	"sync"
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
// with 256-byte values, reopened so that reads come from sstables (goal: p99 < 20us).
func BenchmarkGetP99(b *testing.B) {
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
	s, err := Open(f.dir, Options{Logger: silent{}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	foldtest.BenchGet(b, s, f.n)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if getFixture.dir != "" {
		os.RemoveAll(getFixture.dir)
	}
	os.Exit(code)
}
