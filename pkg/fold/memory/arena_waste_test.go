package memory

import (
	"fmt"
	"iter"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/memory/internal/btreemap"
)

// Entries replaced after a bulk load leave dead bytes in the arena blocks their
// neighbours pin. Once half the arena bytes are dead, Apply re-homes the rest: no entry of
// the tree is left in a block, and every entry reads back unchanged.
func TestBulkLoadArenaWasteIsBounded(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Sync: SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 20000
	key := func(i int) string { return fmt.Sprintf("k%06d", i) }
	val := func(i, gen int) []byte {
		return []byte(fmt.Sprintf("value %d of %d, padded to a few dozen bytes", gen, i))
	}
	entries := func(yield func(fold.Entry, error) bool) {
		for i := range n {
			if !yield(fold.Entry{Key: key(i), Value: val(i, 0), Revision: uint64(i + 1), Live: true}, nil) {
				return
			}
		}
	}
	if err := s.BulkLoad("", iter.Seq2[fold.Entry, error](entries), fold.State{Cursor: n}); err != nil {
		t.Fatal(err)
	}
	if len(s.arena.starts) == 0 || s.arena.bytes == 0 {
		t.Fatalf("bulk load recorded no arena blocks: %+v", s.arena)
	}
	blocks := s.arena // the blocks as loaded, to check the tree against after re-homing
	inBlocks := func() int {
		c := 0
		for k := range s.w.Ascend(btreemap.Min[string](), btreemap.Max[string]()) {
			if blocks.holds(k) {
				c++
			}
		}
		return c
	}
	// Replace every other key, in batches: each block keeps live neighbours, so none is
	// freed, and the dead bytes grow to about half.
	cursor := uint64(n)
	replace := func(from, to, step int) {
		var muts []fold.Mutation
		for i := from; i < to; i += step {
			cursor++
			muts = append(muts, fold.Mutation{Op: fold.MutPut, Key: key(i), Value: val(i, 1), Revision: cursor})
		}
		if err := s.Apply(muts, fold.State{Cursor: cursor}); err != nil {
			t.Fatal(err)
		}
	}
	replace(0, n/2, 2)
	if len(s.arena.starts) == 0 {
		t.Fatalf("re-homed after a quarter of the keys were replaced (dead %d of %d)", s.arena.dead, s.arena.bytes)
	}
	if got := inBlocks(); got != n-n/4 {
		t.Fatalf("%d entries in arena blocks, want %d", got, n-n/4)
	}
	replace(n/2, n, 2)
	if len(s.arena.starts) != 0 {
		t.Fatalf("not re-homed with dead %d of %d arena bytes", s.arena.dead, s.arena.bytes)
	}
	if got := inBlocks(); got != 0 {
		t.Fatalf("%d entries still in arena blocks after re-homing", got)
	}
	for i := range n {
		gen, rev := 0, uint64(i+1)
		if i%2 == 0 {
			gen, rev = 1, 0
		}
		e, ok, err := s.Get(key(i))
		if err != nil || !ok || string(e.Value) != string(val(i, gen)) || (rev != 0 && e.Revision != rev) {
			t.Fatalf("Get(%s) = %q rev %d ok=%v err=%v after re-homing", key(i), e.Value, e.Revision, ok, err)
		}
	}
	if st, err := s.Stats(); err != nil || st.Live != n {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
}
