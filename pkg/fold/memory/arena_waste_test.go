package memory

import (
	"fmt"
	"iter"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
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
		for k := range s.w.Ascend(first()) {
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

// Reopening replays the log into arena blocks: the entries the replay replaced count as
// dead bytes from the start, and a log that is mostly replaced entries is re-homed at once.
func TestReplayArenaCountsReplacedEntries(t *testing.T) {
	const n = 1000
	key := func(i int) string { return fmt.Sprintf("k%06d", i) }
	val := func(i, gen int) []byte { return []byte(fmt.Sprintf("value %d of %d", gen, i)) }
	size := func(i, gen int) int64 { return int64(len(key(i)) + slotHeader + len(val(i, gen))) }
	dir := t.TempDir()
	s, err := Open(dir, Options{Sync: SyncNone, DisableAutoCompact: true})
	if err != nil {
		t.Fatal(err)
	}
	cursor := uint64(0)
	write := func(from, to, gen int) {
		var muts []fold.Mutation
		for i := from; i < to; i++ {
			cursor++
			muts = append(muts, fold.Mutation{Op: fold.MutPut, Key: key(i), Value: val(i, gen), Revision: cursor})
		}
		if err := s.Apply(muts, fold.State{Cursor: cursor}); err != nil {
			t.Fatal(err)
		}
	}
	reopen := func() {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(dir, Options{Sync: SyncNone, DisableAutoCompact: true}); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(gen func(i int) int) {
		t.Helper()
		for i := range n {
			if e, ok, err := s.Get(key(i)); err != nil || !ok || string(e.Value) != string(val(i, gen(i))) {
				t.Fatalf("Get(%s) = %q, %v, %v", key(i), e.Value, ok, err)
			}
		}
	}
	write(0, n, 0)
	write(0, n/4, 1)
	reopen()
	var all, dead int64
	for i := range n {
		all += size(i, 0)
		if i < n/4 {
			all += size(i, 1)
			dead += size(i, 0)
		}
	}
	if len(s.arena.starts) == 0 || s.arena.bytes != all || s.arena.dead != dead {
		t.Fatalf("after replay: %d arena blocks, %d bytes (want %d), %d dead (want %d)", len(s.arena.starts), s.arena.bytes, all, s.arena.dead, dead)
	}
	check(func(i int) int { return map[bool]int{true: 1, false: 0}[i < n/4] })
	write(0, n, 2)
	write(0, n, 3)
	reopen()
	if len(s.arena.starts) != 0 {
		t.Fatalf("a replay of mostly replaced entries kept its blocks: %d bytes, %d dead", s.arena.bytes, s.arena.dead)
	}
	check(func(int) int { return 3 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
