package pebble

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/foldtest"
)

func TestBulkLoad(t *testing.T) {
	foldtest.RunBulkLoadTests(t, openTest, func(s fold.Store, dir string, entries iter.Seq2[fold.Entry, error], st fold.State) error {
		return s.(*Store).BulkLoad(filepath.Join(dir, "scratch"), entries, st)
	})
}

// Crash images taken while the load streams (before the ingest) reopen empty at State{};
// one taken after BulkLoad returned holds everything, even with no unsynced data kept.
func TestBulkLoadCrash(t *testing.T) {
	m, _ := foldtest.RandomModel(4, 2000)
	sorted := m.Sorted()
	rng := rand.New(rand.NewPCG(5, 6))
	fs := vfs.NewCrashableMem()
	s, err := Open("/fold", Options{FS: fs, Logger: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reopen := func(clone *vfs.MemFS, want *foldtest.Model) {
		t.Helper()
		c, err := Open("/fold", Options{FS: clone, Logger: silent{}})
		if err != nil {
			t.Fatalf("reopen crash image: %v", err)
		}
		defer c.Close()
		foldtest.RequireEqual(t, c, want)
		if err := c.Verify(); err != nil {
			t.Fatalf("verify crash image: %v", err)
		}
	}
	crashing := func(yield func(fold.Entry, error) bool) {
		for i, e := range sorted {
			if i%97 == 0 {
				reopen(fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng}), foldtest.NewModel())
			}
			if !yield(e, nil) {
				return
			}
		}
	}
	if err := s.BulkLoad("/fold/scratch", crashing, m.State); err != nil {
		t.Fatal(err)
	}
	reopen(fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0}), m)
}

func BenchmarkBulkLoad(b *testing.B) {
	n := foldtest.BenchKeys(200_000)
	val := make([]byte, 256)
	entries := func(yield func(fold.Entry, error) bool) {
		for i := range n {
			if !yield(fold.Entry{Key: fmt.Sprintf("k.%09d", i), Value: val, Revision: uint64(i + 1), Live: true}, nil) {
				return
			}
		}
	}
	for range b.N {
		dir := b.TempDir()
		s, err := Open(dir, Options{Sync: SyncNone})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.BulkLoad(filepath.Join(dir, "scratch"), entries, fold.State{Cursor: uint64(n)}); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
