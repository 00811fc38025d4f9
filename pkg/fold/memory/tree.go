package memory

import (
	"encoding/binary"
	"iter"
	"strings"
	"unsafe"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/memory/internal/btreemap"
)

// treeDegree keeps nodes small (up to 31 items of 16 bytes): each Apply copies the nodes
// it touches (copy-on-write, so published views stay immutable), and dense nodes keep the
// per-entry overhead near the 16-byte item itself.
const treeDegree = 16

// slot is one entry's revision, liveness and value: revision:u64be ++ flags:u8 (bit0
// live) ++ value. The key and its slot share one buffer (see newEntry), so an entry
// costs one 16-byte tree item plus key+9+value bytes.
type slot string

const slotHeader = 9

func (s slot) rev() uint64 { return binary.BigEndian.Uint64([]byte(s[:8])) }
func (s slot) live() bool  { return s[8]&1 != 0 }
func (s slot) valLen() int { return len(s) - slotHeader }

// newEntry lays out key and slot in one immutable buffer (key must not be empty).
func newEntry(key string, rev uint64, live bool, value []byte) (string, slot) {
	buf := make([]byte, len(key)+slotHeader+len(value))
	n := copy(buf, key)
	binary.BigEndian.PutUint64(buf[n:], rev)
	if live {
		buf[n+8] = 1
	}
	copy(buf[n+slotHeader:], value)
	return unsafe.String(&buf[0], n), slot(unsafe.String(&buf[n], len(buf)-n))
}

// item is what the tree holds for an entry: the entry's buffer (key, then slot) and the
// lengths of its key and value, in 16 bytes, half of a key string and a slot string
// side by side. That is most of the per-entry overhead of small values. An item made by
// keyItem holds only a key, to search with.
type item struct {
	p    *byte
	klen uint32
	vlen uint32
}

func (it item) key() string { return unsafe.String(it.p, it.klen) }

func (it item) slot() slot {
	return slot(unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(it.p), it.klen)), slotHeader+int(it.vlen)))
}

func keyItem(key string) item { return item{p: unsafe.StringData(key), klen: uint32(len(key))} }

// entryItem is the item of an entry made by newEntry or entryArena.newEntry: s must
// follow k in the same buffer.
func entryItem(k string, s slot) item {
	if unsafe.StringData(string(s)) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(k)), len(k))) {
		panic("memory: a slot that does not follow its key in one buffer")
	}
	return item{p: unsafe.StringData(k), klen: uint32(len(k)), vlen: uint32(s.valLen())}
}

func compareItems(a, b item) int { return strings.Compare(a.key(), b.key()) }

// tree is an ordered map of entries (key to slot) on a copy-on-write B-tree of items.
type tree struct {
	m *btreemap.BTreeMap[item, struct{}]
}

func newTree() *tree { return &tree{btreemap.New[item, struct{}](treeDegree, compareItems)} }

func (t *tree) Len() int { return t.m.Len() }

// Clone returns a copy in O(1); later changes to either do not show in the other.
func (t *tree) Clone() *tree { return &tree{t.m.Clone()} }

// Get returns the entry of key (the key from the entry's buffer).
func (t *tree) Get(key string) (string, slot, bool) {
	it, _, ok := t.m.Get(keyItem(key))
	if !ok {
		return "", "", false
	}
	return it.key(), it.slot(), true
}

// ReplaceOrInsert puts the entry k, s (see entryItem) and returns the one it replaced.
func (t *tree) ReplaceOrInsert(k string, s slot) (string, slot, bool) {
	old, _, had := t.m.ReplaceOrInsert(entryItem(k, s), struct{}{})
	if !had {
		return "", "", false
	}
	return old.key(), old.slot(), true
}

// Delete removes the entry of key and returns it.
func (t *tree) Delete(key string) (string, slot, bool) {
	old, _, had := t.m.Delete(keyItem(key))
	if !had {
		return "", "", false
	}
	return old.key(), old.slot(), true
}

// Ascend iterates the entries from lo (first, atLeast, after) to the last, in key order.
func (t *tree) Ascend(lo btreemap.LowerBound[item]) iter.Seq2[string, slot] {
	return func(yield func(string, slot) bool) {
		t.m.AscendFunc(lo, btreemap.Max[item](), func(it item, _ struct{}) bool { return yield(it.key(), it.slot()) })
	}
}

func first() btreemap.LowerBound[item]             { return btreemap.Min[item]() }
func atLeast(key string) btreemap.LowerBound[item] { return btreemap.GE(keyItem(key)) }
func after(key string) btreemap.LowerBound[item]   { return btreemap.GT(keyItem(key)) }

// treeBuilder builds a tree like newTree's from entries added in strictly increasing key
// order (a bulk load): in O(n), with full nodes.
type treeBuilder struct {
	b *btreemap.Builder[item, struct{}]
}

func newTreeBuilder() treeBuilder {
	return treeBuilder{btreemap.NewBuilder[item, struct{}](treeDegree, compareItems)}
}

func (b treeBuilder) Add(k string, s slot) { b.b.Add(entryItem(k, s), struct{}{}) }

func (b treeBuilder) Build() *tree { return &tree{b.b.Build()} }

// counts are the fold's statistics plus the encoded size of a compacted log.
type counts struct {
	live, tombstones, liveBytes uint64
	tombKeyBytes                uint64
}

// compactedSize estimates the bytes a freshly compacted log of these contents takes.
func (c counts) compactedSize() int64 {
	const putOverhead = 5 + 2 + 4 + 1 + revisionLen
	const delOverhead = 5 + 2 + 1 + revisionLen
	return int64(headerLen) + int64(c.liveBytes+c.live*putOverhead+c.tombKeyBytes+c.tombstones*delOverhead) + 5 + 1 + cursorLen + cursorFlagLen
}

// apply folds m into t, keeping c exact, and returns the entry it replaced or removed, if
// any. One tree operation per mutation: that entry comes back from the insert or delete.
// The new entry is carved from a (nil: an allocation of its own).
func (c *counts) apply(t *tree, m fold.Mutation, a *entryArena) (oldKey string, old slot, had bool) {
	switch m.Op {
	case fold.MutPut, fold.MutDelete:
		k, s := a.newEntry(m.Key, m.Revision, m.Op == fold.MutPut, m.Value)
		if oldKey, old, had = t.ReplaceOrInsert(k, s); had {
			c.remove(oldKey, old)
		}
		c.add(k, s)
	case fold.MutForget:
		if oldKey, old, had = t.Delete(m.Key); had {
			c.remove(oldKey, old)
		}
	}
	return oldKey, old, had
}

func (c *counts) add(key string, s slot) {
	if s.live() {
		c.live++
		c.liveBytes += uint64(len(key) + s.valLen())
	} else {
		c.tombstones++
		c.tombKeyBytes += uint64(len(key))
	}
}

func (c *counts) remove(key string, s slot) {
	if s.live() {
		c.live--
		c.liveBytes -= uint64(len(key) + s.valLen())
	} else {
		c.tombstones--
		c.tombKeyBytes -= uint64(len(key))
	}
}

func entryOf(key string, s slot) fold.Entry {
	e := fold.Entry{Key: key, Revision: s.rev(), Live: s.live()}
	if e.Live {
		e.Value = []byte(s[slotHeader:])
	}
	return e
}

func iterPull(t *tree) (func() (string, slot, bool), func()) {
	return iter.Pull2(t.Ascend(first()))
}
