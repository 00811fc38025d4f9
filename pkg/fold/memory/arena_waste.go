package memory

import (
	"cmp"
	"slices"
	"unsafe"
)

// arenaUse tracks the entries a bulk load or a replay of the log (Open) carved from arena
// blocks (see entryArena), so that the memory they pin stays bounded: a block is freed
// only with the last entry that lives in it, so entries replaced or removed after they
// were carved are dead bytes while any neighbour lives. Once the dead bytes reach half of what the blocks hold, Apply re-homes
// the remaining arena entries into allocations of their own and the blocks go (rehome):
// the waste never exceeds the live arena bytes, and the backend keeps its bound of about
// twice the raw key and value bytes.
//
// The block addresses are kept as integers, so they do not keep a block alive. Once a
// block is freed its range may be reused by entries Apply allocates, which then count as
// dead when they go: that only brings the re-homing forward.
type arenaUse struct {
	starts []uintptr // sorted block start addresses
	ends   []uintptr // ends[i] is the end of the block starting at starts[i]
	bytes  int64     // bytes of entries carved from the blocks
	dead   int64     // of those, bytes of entries no longer in the writer's tree
}

// add records the blocks of a finished bulk load or replay.
func (a *arenaUse) add(blocks [][]byte, bytes int64) {
	type span struct{ start, end uintptr }
	spans := make([]span, 0, len(a.starts)+len(blocks))
	for i := range a.starts {
		spans = append(spans, span{a.starts[i], a.ends[i]})
	}
	for _, b := range blocks {
		if cap(b) > 0 {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
			spans = append(spans, span{p, p + uintptr(cap(b))})
		}
	}
	slices.SortFunc(spans, func(x, y span) int { return cmp.Compare(x.start, y.start) })
	a.starts, a.ends = a.starts[:0], a.ends[:0]
	for _, sp := range spans {
		a.starts = append(a.starts, sp.start)
		a.ends = append(a.ends, sp.end)
	}
	a.bytes += bytes
}

// holds reports whether key (an entry's key, which starts its allocation) lives in a block.
func (a *arenaUse) holds(key string) bool {
	if len(a.starts) == 0 || len(key) == 0 {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(key)))
	i, found := slices.BinarySearch(a.starts, p)
	if found {
		return true
	}
	return i > 0 && p < a.ends[i-1]
}

// dropped counts an entry that left the writer's tree.
func (a *arenaUse) dropped(key string, s slot) {
	if a.holds(key) {
		a.dead += int64(len(key) + len(s))
	}
}

// wasteful: the dead bytes reached half of the arena bytes.
func (a *arenaUse) wasteful() bool { return len(a.starts) > 0 && 2*a.dead >= a.bytes }

// rehome copies every entry of the writer's tree that lives in an arena block into an
// allocation of its own and forgets the blocks (published views keep what they hold until
// they are dropped). Called with mu held.
func (s *Store) rehome() {
	const chunk = 4096 // the tree is not changed while it is iterated: copy in chunks
	moved := make([]treeItem, 0, chunk)
	from := first()
	for {
		moved = moved[:0]
		more := false
		for k, sl := range s.w.Ascend(from) {
			if len(moved) == chunk {
				more = true
				break
			}
			if s.arena.holds(k) {
				moved = append(moved, treeItem{k, sl})
			}
			from = after(k)
		}
		for _, it := range moved {
			k, sl := newEntry(it.k, it.s.rev(), it.s.live(), []byte(it.s[slotHeader:]))
			s.w.ReplaceOrInsert(k, sl)
		}
		if !more {
			break
		}
	}
	s.arena = arenaUse{}
}
