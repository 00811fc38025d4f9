package memory

import (
	"encoding/binary"
	"iter"
	"strings"
	"unsafe"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/memory/internal/btreemap"
)

// treeDegree keeps nodes small (up to 31 entries of 32 bytes): each Apply copies the nodes
// it touches (copy-on-write, so published views stay immutable), and dense nodes keep the
// per-entry overhead near the 32-byte item itself.
const treeDegree = 16

// slot is one entry's revision, liveness and value: revision:u64be ++ flags:u8 (bit0
// live) ++ value. The key and its slot share one allocation (see newEntry), so an entry
// costs one 32-byte tree item plus one allocation of key+9+value bytes.
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

type tree = btreemap.BTreeMap[string, slot]

func newTree() *tree { return btreemap.New[string, slot](treeDegree, strings.Compare) }

// newTreeBuilder builds a tree like newTree's from keys added in strictly increasing
// order (a bulk load): in O(n), with full nodes.
func newTreeBuilder() *btreemap.Builder[string, slot] {
	return btreemap.NewBuilder[string, slot](treeDegree, strings.Compare)
}

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
func (c *counts) apply(t *tree, m fold.Mutation) (oldKey string, old slot, had bool) {
	switch m.Op {
	case fold.MutPut, fold.MutDelete:
		k, s := newEntry(m.Key, m.Revision, m.Op == fold.MutPut, m.Value)
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
	return iter.Pull2(t.Ascend(btreemap.Min[string](), btreemap.Max[string]()))
}
