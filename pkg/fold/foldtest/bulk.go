package foldtest

import (
	"errors"
	"iter"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// BulkLoadFunc bulk-loads entries into s, a store open in dir, and records st (the
// backend's BulkLoad method).
type BulkLoadFunc func(s fold.Store, dir string, entries iter.Seq2[fold.Entry, error], st fold.State) error

// BulkSeq yields entries through one key and one value buffer that it overwrites after
// each step, as a streaming reader does (a loader must copy), then err when not nil.
func BulkSeq(entries []fold.Entry, err error) iter.Seq2[fold.Entry, error] {
	return func(yield func(fold.Entry, error) bool) {
		var kb, vb []byte
		for _, e := range entries {
			kb = append(kb[:0], e.Key...)
			vb = append(vb[:0], e.Value...)
			e.Value = vb
			if len(kb) > 0 {
				e.Key = unsafe.String(&kb[0], len(kb)) // aliases kb, overwritten below
			}
			if !yield(e, nil) {
				return
			}
			clear(vb)
			clear(kb)
		}
		if err != nil {
			yield(fold.Entry{}, err)
		}
	}
}

// RandomModel is the fold a random log of n mutations leaves, at a consistent
// (non-resyncing) state, and the log.
func RandomModel(seed uint64, n int) (*Model, []Batch) {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	log := RandomLog(rng, n, 200, 300, 40)
	m := NewModel()
	for i := range log {
		log[i].State.Resyncing = false
		m.Apply(log[i])
	}
	return m, log
}

// RunBulkLoadTests checks a backend's bulk load: a loaded store holds exactly the entries
// and state, folds later batches and reopens equal; a failed or invalid load leaves it
// empty and usable; a store holding anything is refused (storekit.ErrNotEmpty); and the
// whole conformance suite passes on stores created by a bulk load.
func RunBulkLoadTests(t *testing.T, open OpenFunc, load BulkLoadFunc) {
	t.Run("LoadThenApply", func(t *testing.T) { testBulkThenApply(t, open, load) })
	t.Run("FailureLeavesStoreEmpty", func(t *testing.T) { testBulkFailure(t, open, load) })
	t.Run("RequiresEmptyStore", func(t *testing.T) { testBulkRequiresEmpty(t, open, load) })
	t.Run("Conformance", func(t *testing.T) {
		RunStoreTests(t, func(t *testing.T, dir string) fold.Store {
			t.Helper()
			s := open(t, dir)
			st, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if s.State() == (fold.State{}) && st.Live+st.Tombstones == 0 {
				if err := load(s, dir, BulkSeq(nil, nil), fold.State{}); err != nil {
					t.Fatalf("bulk load: %v", err)
				}
			}
			return s
		})
	})
}

func testBulkThenApply(t *testing.T, open OpenFunc, load BulkLoadFunc) {
	m, _ := RandomModel(1, 3000)
	dir := t.TempDir()
	s := openT(t, open, dir)
	if err := load(s, dir, BulkSeq(m.Sorted(), nil), m.State); err != nil {
		t.Fatalf("bulk load: %v", err)
	}
	RequireEqual(t, s, m)
	verify(t, s)
	// The tail: more batches over the same keys, above the loaded cursor.
	_, tail := RandomModel(2, 2000)
	for _, b := range tail {
		for i := range b.Muts {
			b.Muts[i].Revision += m.State.Cursor
		}
		b.State.Cursor += m.State.Cursor
		mustApply(t, s, b)
		m.Apply(b)
	}
	RequireEqual(t, s, m)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, open, dir)
	RequireEqual(t, s2, m)
	verify(t, s2)
}

func testBulkFailure(t *testing.T, open OpenFunc, load BulkLoadFunc) {
	m, _ := RandomModel(3, 500)
	sorted := m.Sorted()
	boom := errors.New("trailer does not verify")
	unordered := slices.Clone(sorted)
	unordered[10], unordered[11] = unordered[11], unordered[10]
	zeroRev := slices.Clone(sorted)
	zeroRev[5].Revision = 0
	for _, tc := range []struct {
		name    string
		entries iter.Seq2[fold.Entry, error]
		want    error
	}{
		{"error at the end", BulkSeq(sorted, boom), boom},
		{"error at the start", BulkSeq(nil, boom), boom},
		{"out of order", BulkSeq(unordered, nil), storekit.ErrInvalidMutation},
		{"revision 0", BulkSeq(zeroRev, nil), storekit.ErrInvalidMutation},
		{"empty key", BulkSeq([]fold.Entry{{Revision: 1, Live: true}}, nil), storekit.ErrInvalidMutation},
		{"tombstone with a value", BulkSeq([]fold.Entry{{Key: "a", Value: []byte("x"), Revision: 1}}, nil), storekit.ErrInvalidMutation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, open, dir)
			if err := load(s, dir, tc.entries, m.State); !errors.Is(err, tc.want) {
				t.Fatalf("bulk load = %v, want %v", err, tc.want)
			}
			RequireEqual(t, s, NewModel())
			if err := load(s, dir, BulkSeq(sorted, nil), m.State); err != nil {
				t.Fatalf("bulk load after a failed one: %v", err)
			}
			RequireEqual(t, s, m)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			RequireEqual(t, openT(t, open, dir), m)
		})
	}
}

func testBulkRequiresEmpty(t *testing.T, open OpenFunc, load BulkLoadFunc) {
	dir := t.TempDir()
	s := openT(t, open, dir)
	mustApply(t, s, Batch{Muts: []fold.Mutation{put("a", "1", 1)}}) // a key at cursor 0
	if err := load(s, dir, BulkSeq([]fold.Entry{{Key: "b", Revision: 2, Live: true}}, nil), fold.State{Cursor: 2}); !errors.Is(err, storekit.ErrNotEmpty) {
		t.Fatalf("bulk load into a store holding a key = %v, want ErrNotEmpty", err)
	}
	dir2 := t.TempDir()
	s2 := openT(t, open, dir2)
	mustApply(t, s2, Batch{State: fold.State{Cursor: 1}})
	if err := load(s2, dir2, BulkSeq(nil, nil), fold.State{Cursor: 2}); !errors.Is(err, storekit.ErrNotEmpty) {
		t.Fatalf("bulk load into a store at a cursor = %v, want ErrNotEmpty", err)
	}
}

// Relocator is implemented by stores that follow their directory being renamed while they
// are open (a staged export becoming the fold without a reopen, pkg/export).
type Relocator interface {
	Relocate(dir string, move func() error) error
}

// Compacter is implemented by stores with an explicit compaction (which writes in the
// store's directory).
type Compacter interface {
	Compact() error
}

// testRelocate: a store whose directory moved keeps working at the new place (applies,
// flush and compaction write there, never at the old path) and reopens equal; a move that
// fails changes nothing.
func testRelocate(t *testing.T, open OpenFunc) {
	m, log := RandomModel(5, 800)
	root := t.TempDir()
	from, to := filepath.Join(root, "staging"), filepath.Join(root, "fold")
	s := open(t, from)
	defer s.Close()
	r, ok := s.(Relocator)
	if !ok {
		t.Skip("backend does not relocate")
	}
	half := len(log) / 2
	for _, b := range log[:half] {
		if err := s.Apply(b.Muts, b.State); err != nil {
			t.Fatal(err)
		}
	}
	refused := errors.New("refused")
	if err := r.Relocate(to, func() error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("relocate with a failing move = %v, want its error", err)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("flush after a failed relocate: %v", err)
	}
	if err := r.Relocate(to, func() error { return os.Rename(from, to) }); err != nil {
		t.Fatal(err)
	}
	for _, b := range log[half:] {
		if err := s.Apply(b.Muts, b.State); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("flush after relocate: %v", err)
	}
	if c, ok := s.(Compacter); ok {
		if err := c.Compact(); err != nil {
			t.Fatalf("compact after relocate: %v", err)
		}
	}
	RequireEqual(t, s, m)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(from); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the old directory was written to after relocate: %v", err)
	}
	RequireEqual(t, openT(t, open, to), m)
}
