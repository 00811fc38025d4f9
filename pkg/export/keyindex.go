package export

import (
	"sort"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// maxKeyIndexBytes bounds a keyIndex: an export whose keys need more is staged without
// one (its check looks keys up in the staged store).
var maxKeyIndexBytes = 64 << 20

// keyIndexEntryBytes is what a keyIndex spends per record besides the key's bytes.
const keyIndexEntryBytes = 4 + 8

// keyIndex is the key set of a staged export, in key order, with what the staged store
// holds for each key (liveness, value length), recorded as the records are staged
// (StageOptions.IndexKeys). Seeding's check with NATS asks it, through checkReader, what
// the fold holds for each key of the delta: a binary search in RAM, where a lookup in a
// just-built pebble store loads and decompresses a table block (about 15 µs of CPU; for a
// 10k-key delta, most of the check). The answers are exact: the index holds every
// record the store was filled with, and nothing else.
type keyIndex struct {
	keys []byte   // every key, concatenated
	ends []uint32 // ends[i]: the end of key i in keys
	vals []uint64 // vals[i]: value length << 1 | live
}

// newKeyIndex returns an empty index for count records, or nil when their fixed cost
// alone exceeds maxKeyIndexBytes.
func newKeyIndex(count uint64) *keyIndex {
	if count > uint64(maxKeyIndexBytes/keyIndexEntryBytes) {
		return nil
	}
	n := int(count)
	return &keyIndex{
		keys: make([]byte, 0, min(maxKeyIndexBytes-n*keyIndexEntryBytes, n*24)),
		ends: make([]uint32, 0, n),
		vals: make([]uint64, 0, n),
	}
}

// add records e, which sorts after every key added before. It reports false, and the
// index must be dropped, once the index would outgrow maxKeyIndexBytes.
func (x *keyIndex) add(e fold.Entry) bool {
	if len(x.keys)+len(e.Key)+(len(x.ends)+1)*keyIndexEntryBytes > maxKeyIndexBytes {
		return false
	}
	x.keys = append(x.keys, e.Key...)
	x.ends = append(x.ends, uint32(len(x.keys)))
	v := uint64(len(e.Value)) << 1
	if e.Live {
		v |= 1
	}
	x.vals = append(x.vals, v)
	return true
}

func (x *keyIndex) key(i int) string {
	start := uint32(0)
	if i > 0 {
		start = x.ends[i-1]
	}
	if start == x.ends[i] {
		return ""
	}
	return unsafe.String(&x.keys[start], int(x.ends[i]-start))
}

// prior is what the staged store holds for key (fold.Prior, Known).
func (x *keyIndex) prior(key string) fold.Prior {
	i := sort.Search(len(x.ends), func(i int) bool { return strings.Compare(x.key(i), key) >= 0 })
	if i == len(x.ends) || x.key(i) != key {
		return fold.Absent
	}
	return fold.Prior{Known: true, Exists: true, Live: x.vals[i]&1 != 0, ValueLen: int(x.vals[i] >> 1)}
}

// indexedStore is a staged store whose LookupPrior (fold.PriorLooker) answers from its
// keyIndex while it has one (Staged.DropIndex releases it; the verified watch that holds
// this reader outlives the check), and from the store after that.
type indexedStore struct {
	fold.Store
	idx *atomic.Pointer[keyIndex]
}

func (s indexedStore) LookupPrior(key string) (fold.Prior, error) {
	if x := s.idx.Load(); x != nil {
		return x.prior(key), nil
	}
	return fold.LookupPrior(s.Store, key)
}
