package export

import (
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// sliceFold is a fold.Reader over sorted entries, for format tests that must not depend on
// a store backend.
type sliceFold struct {
	st      fold.State
	entries []fold.Entry
	// statsLie adds to the live count Stats reports.
	statsLie uint64
}

var _ fold.Reader = (*sliceFold)(nil)

func newSliceFold(cursor uint64, entries ...fold.Entry) *sliceFold {
	es := slices.Clone(entries)
	slices.SortFunc(es, func(a, b fold.Entry) int { return strings.Compare(a.Key, b.Key) })
	return &sliceFold{st: fold.State{Cursor: cursor}, entries: es}
}

func (f *sliceFold) State() fold.State { return f.st }

func (f *sliceFold) Get(key string) (fold.Entry, bool, error) {
	e, ok, err := f.Lookup(key)
	return e, ok && e.Live, err
}

func (f *sliceFold) Lookup(key string) (fold.Entry, bool, error) {
	i, ok := slices.BinarySearchFunc(f.entries, key, func(e fold.Entry, k string) int { return strings.Compare(e.Key, k) })
	if !ok {
		return fold.Entry{}, false, nil
	}
	return f.entries[i], true, nil
}

func (f *sliceFold) Range(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	return func(yield func(fold.Entry, error) bool) {
		for _, e := range f.entries {
			if !strings.HasPrefix(e.Key, prefix) || (!e.Live && !tombstones) {
				continue
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

func (f *sliceFold) Stats() (fold.Stats, error) {
	var s fold.Stats
	for _, e := range f.entries {
		if e.Live {
			s.Live++
			s.LiveBytes += uint64(len(e.Key) + len(e.Value))
		} else {
			s.Tombstones++
		}
	}
	s.Live += f.statsLie
	return s, nil
}

func live(key, value string, rev uint64) fold.Entry {
	return fold.Entry{Key: key, Value: []byte(value), Revision: rev, Live: true}
}

func tomb(key string, rev uint64) fold.Entry { return fold.Entry{Key: key, Revision: rev} }

// genEntries makes n entries with keys "k.<i>", every fifth a tombstone.
func genEntries(n, valueSize int) []fold.Entry {
	out := make([]fold.Entry, n)
	for i := range out {
		key := fmt.Sprintf("k.%08d", i)
		if i%5 == 4 {
			out[i] = tomb(key, uint64(i+1))
			continue
		}
		v := make([]byte, valueSize)
		for j := range v {
			v[j] = byte(i + j)
		}
		out[i] = fold.Entry{Key: key, Value: v, Revision: uint64(i + 1), Live: true}
	}
	return out
}
