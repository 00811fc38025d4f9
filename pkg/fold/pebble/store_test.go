package pebble

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/foldtest"
)

// silent drops Pebble's logs (corruption tests make it report errors on purpose).
type silent struct{}

func (silent) Infof(string, ...interface{})  {}
func (silent) Errorf(string, ...interface{}) {}
func (silent) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf(format, args...))
}

func testOptions() Options {
	return Options{CacheSize: 8 << 20, MemTableSize: 4 << 20, Logger: silent{}}
}

func openTest(t *testing.T, dir string) fold.Store {
	t.Helper()
	s, err := Open(dir, testOptions())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	foldtest.RunStoreTests(t, openTest, foldtest.Hooks{
		OpenErr: func(dir string) (fold.Store, error) { return Open(dir, testOptions()) },
		Crash:   crashableMemCrash,
		Corrupt: flipInLargestFile,
	})
}

// crashableMemCrash runs the batches on vfs.NewCrashableMem and takes crash clones (with a
// random share of unsynced writes surviving) after Applies and while Applies run in
// another goroutine; every clone must reopen at a complete batch, and with SyncEveryApply
// at or after the last acknowledged one.
func crashableMemCrash(t *testing.T, batches []foldtest.Batch, check func(fold.Store, int, int)) {
	rng := rand.New(rand.NewPCG(11, 12))
	reopen := func(fs *vfs.MemFS, lo, hi int) {
		s, err := Open("/fold", Options{FS: fs})
		if err != nil {
			t.Fatalf("reopen crash clone: %v", err)
		}
		check(s, lo, hi)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, mode := range []SyncMode{SyncEveryApply, SyncNone} {
		fs := vfs.NewCrashableMem()
		s, err := Open("/fold", Options{FS: fs, Sync: mode})
		if err != nil {
			t.Fatal(err)
		}
		half := len(batches) / 2
		for i, b := range batches[:half] {
			if err := s.Apply(b.Muts, b.State); err != nil {
				t.Fatal(err)
			}
			clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
			lo := i + 1
			if mode == SyncNone {
				lo = 0
			}
			reopen(clone, lo, i+1)
		}
		// Crash while Applies are in flight.
		var mu sync.Mutex
		applied := half
		done := make(chan error, 1)
		go func() {
			for _, b := range batches[half:] {
				if err := s.Apply(b.Muts, b.State); err != nil {
					done <- err
					return
				}
				mu.Lock()
				applied++
				mu.Unlock()
			}
			done <- nil
		}()
		for finished := false; !finished; {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				finished = true
			default:
			}
			mu.Lock()
			lo := applied
			mu.Unlock()
			clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
			mu.Lock()
			hi := min(applied+1, len(batches))
			mu.Unlock()
			if mode == SyncNone {
				lo = 0
			}
			reopen(clone, lo, hi)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// flipInLargestFile flips a byte in the middle half of the largest table (Close flushed
// the memtables), or of the WAL when there is no table.
func flipInLargestFile(t *testing.T, dir string, rng *rand.Rand) {
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var best string
	var size int64
	for _, n := range names {
		fi, err := n.Info()
		if err != nil {
			t.Fatal(err)
		}
		weight := fi.Size()
		if strings.HasSuffix(n.Name(), ".sst") {
			weight += 1 << 40
		}
		if (strings.HasSuffix(n.Name(), ".sst") || strings.HasSuffix(n.Name(), ".log")) && weight > size {
			best, size = n.Name(), weight
		}
	}
	if best == "" {
		t.Fatalf("no table or log file in %s", dir)
	}
	p := filepath.Join(dir, best)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := len(data)/4 + rng.IntN(len(data)/2)
	data[i] ^= byte(1 + rng.IntN(255))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("flipped byte %d of %s (%d bytes)", i, best, len(data))
}

// Mutations whose Prior is known skip reading the replaced entry; counts stay exact when
// the promise holds (including for a key put twice in one batch), and a false promise is
// believed, which shows the read was skipped. Small batches read one entry at a time and
// large ones ahead (readPriors): both paths.
func TestKnownPriorsKeepCounts(t *testing.T) {
	for _, pad := range []int{0, parallelPriors} {
		t.Run(fmt.Sprintf("pad=%d", pad), func(t *testing.T) {
			s, err := Open(t.TempDir(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			padded := 0 // tombstones of padding, whose priors are unknown (and absent)
			apply := func(cursor uint64, muts ...fold.Mutation) {
				t.Helper()
				for i := range pad {
					muts = append(muts, fold.Mutation{Op: fold.MutDelete, Key: fmt.Sprintf("pad.%d.%d", cursor, i), Revision: cursor})
				}
				padded += pad
				if err := s.Apply(muts, fold.State{Cursor: cursor}); err != nil {
					t.Fatal(err)
				}
			}
			stats := func(live, tombs, liveBytes uint64) {
				t.Helper()
				st, err := s.Stats()
				if err != nil {
					t.Fatal(err)
				}
				tombs += uint64(padded)
				if st.Live != live || st.Tombstones != tombs || st.LiveBytes != liveBytes {
					t.Fatalf("stats = %+v, want %d live (%d bytes), %d tombstones", st, live, liveBytes, tombs)
				}
			}
			apply(4,
				fold.Mutation{Op: fold.MutPut, Key: "a", Value: []byte("1"), Revision: 1, Prior: fold.Absent},
				fold.Mutation{Op: fold.MutPut, Key: "b", Value: []byte("22"), Revision: 2, Prior: fold.Absent},
				fold.Mutation{Op: fold.MutDelete, Key: "c", Revision: 3, Prior: fold.Absent},
				fold.Mutation{Op: fold.MutPut, Key: "a", Value: []byte("333"), Revision: 4, Prior: fold.Absent})
			stats(2, 1, uint64(len("a333")+len("b22")))
			// True promises about a live entry and a tombstone, as a verified resume makes.
			apply(8,
				fold.Mutation{Op: fold.MutDelete, Key: "a", Revision: 5, Prior: fold.Prior{Known: true, Exists: true, Live: true, ValueLen: 3}},
				fold.Mutation{Op: fold.MutPut, Key: "c", Value: []byte("4444"), Revision: 6, Prior: fold.Prior{Known: true, Exists: true}})
			stats(2, 1, uint64(len("b22")+len("c4444")))
			if err := s.Verify(); err != nil {
				t.Fatalf("verify: %v", err)
			}
			// A false promise (b is live) is taken at its word: the entry was not read.
			apply(12, fold.Mutation{Op: fold.MutPut, Key: "b", Value: []byte("5"), Revision: 9, Prior: fold.Absent})
			stats(3, 1, uint64(len("b22")+len("c4444")+len("b5")))
		})
	}
}
