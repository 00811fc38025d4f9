package pebble

import (
	"errors"
	"iter"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// reader serves fold.Reader from the database or a snapshot.
type reader struct {
	store *storekit.Guard
	own   *storekit.Guard // the snapshot's; nil for the store
	r     pebbleReader
	meta  func() (meta, error)
	disk  func() uint64
}

func (r reader) acquire() error {
	if err := r.store.Acquire(); err != nil {
		return err
	}
	if r.own != nil {
		if err := r.own.Acquire(); err != nil {
			r.store.Release()
			return err
		}
	}
	return nil
}

func (r reader) release() {
	if r.own != nil {
		r.own.Release()
	}
	r.store.Release()
}

func (r reader) State() fold.State {
	m, _ := r.meta()
	return m.st
}

func (r reader) Get(key string) (fold.Entry, bool, error) {
	e, ok, err := r.Lookup(key)
	if !e.Live {
		return fold.Entry{}, false, err
	}
	return e, ok, err
}

func (r reader) Lookup(key string) (fold.Entry, bool, error) {
	if err := r.acquire(); err != nil {
		return fold.Entry{}, false, err
	}
	defer r.release()
	raw, c, err := r.r.Get(entryKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return fold.Entry{}, false, nil
	}
	if err != nil {
		return fold.Entry{}, false, wrapErr("get", err)
	}
	defer c.Close()
	e, err := decodeEntry([]byte(key), raw)
	if err != nil {
		return fold.Entry{}, false, err
	}
	return e, true, nil
}

func (r reader) Range(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	return func(yield func(fold.Entry, error) bool) {
		if err := r.acquire(); err != nil {
			yield(fold.Entry{}, err)
			return
		}
		defer r.release()
		lower, upper := prefixBounds(prefix)
		it, err := r.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			yield(fold.Entry{}, wrapErr("range", err))
			return
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			raw, err := it.ValueAndErr()
			if err != nil {
				yield(fold.Entry{}, wrapErr("range", err))
				return
			}
			e, err := decodeEntry(it.Key()[1:], raw)
			if err != nil {
				yield(fold.Entry{}, err)
				return
			}
			if !e.Live && !tombstones {
				continue
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := it.Error(); err != nil {
			yield(fold.Entry{}, wrapErr("range", err))
		}
	}
}

// Stats is O(1): the counts are persisted with every batch. While a resync is in progress
// (State().Resyncing) they are an upper bound, made exact again when the resync ends.
func (r reader) Stats() (fold.Stats, error) {
	if err := r.acquire(); err != nil {
		return fold.Stats{}, err
	}
	defer r.release()
	m, err := r.meta()
	if err != nil {
		return fold.Stats{}, err
	}
	return fold.Stats{Live: m.c.live, Tombstones: m.c.tombstones, LiveBytes: m.c.liveBytes, DiskBytes: r.disk()}, nil
}
