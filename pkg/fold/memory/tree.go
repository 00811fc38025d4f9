package memory

import (
	"iter"
	"strings"

	"github.com/RaduBerinde/btreemap"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// treeDegree keeps nodes small (up to 31 entries of 48 bytes): each Apply copies the nodes
// it touches (copy-on-write, so published views stay immutable), and dense nodes keep the
// per-entry overhead near the 48-byte item itself.
const treeDegree = 16

// slot is one entry's value. Key and value bytes are held in immutable strings: one
// allocation each, no per-entry heap struct.
type slot struct {
	val  string
	rev  uint64
	live bool
}

type tree = btreemap.BTreeMap[string, slot]

func newTree() *tree { return btreemap.New[string, slot](treeDegree, strings.Compare) }

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

// apply folds m into t, keeping c exact.
func (c *counts) apply(t *tree, m fold.Mutation) {
	if _, old, ok := t.Get(m.Key); ok {
		c.remove(m.Key, old)
	}
	switch m.Op {
	case fold.MutPut:
		s := slot{val: string(m.Value), rev: m.Revision, live: true}
		t.ReplaceOrInsert(m.Key, s)
		c.add(m.Key, s)
	case fold.MutDelete:
		s := slot{rev: m.Revision}
		t.ReplaceOrInsert(m.Key, s)
		c.add(m.Key, s)
	case fold.MutForget:
		t.Delete(m.Key)
	}
}

func (c *counts) add(key string, s slot) {
	if s.live {
		c.live++
		c.liveBytes += uint64(len(key) + len(s.val))
	} else {
		c.tombstones++
		c.tombKeyBytes += uint64(len(key))
	}
}

func (c *counts) remove(key string, s slot) {
	if s.live {
		c.live--
		c.liveBytes -= uint64(len(key) + len(s.val))
	} else {
		c.tombstones--
		c.tombKeyBytes -= uint64(len(key))
	}
}

func entryOf(key string, s slot) fold.Entry {
	e := fold.Entry{Key: key, Revision: s.rev, Live: s.live}
	if s.live {
		e.Value = []byte(s.val)
	}
	return e
}

func iterPull(t *tree) (func() (string, slot, bool), func()) {
	return iter.Pull2(t.Ascend(btreemap.Min[string](), btreemap.Max[string]()))
}
