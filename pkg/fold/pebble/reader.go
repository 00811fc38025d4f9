package pebble

import (
	"encoding/binary"
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
	if err := checkValue(key, raw); err != nil {
		return fold.Entry{}, false, err
	}
	// The caller's key string is the entry's: no copy of it.
	e := fold.Entry{Key: key, Revision: binary.BigEndian.Uint64(raw), Live: raw[8]&flagLive != 0}
	if e.Live {
		e.Value = append(make([]byte, 0, len(raw)-valueHeader), raw[valueHeader:]...)
	}
	return e, true, nil
}

func (r reader) Range(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	return r.rangeEntries(prefix, tombstones, true)
}

// RangeKeys is Range without copying values (fold.KeyRanger).
func (r reader) RangeKeys(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	return r.rangeEntries(prefix, tombstones, false)
}

func (r reader) rangeEntries(prefix string, tombstones, values bool) iter.Seq2[fold.Entry, error] {
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
			key := it.Key()[1:]
			if err := checkValue(key, raw); err != nil {
				yield(fold.Entry{}, err)
				return
			}
			live := raw[8]&flagLive != 0
			if !live && !tombstones {
				continue
			}
			e := fold.Entry{Key: string(key), Revision: binary.BigEndian.Uint64(raw), Live: live}
			if live && values {
				e.Value = append(make([]byte, 0, len(raw)-valueHeader), raw[valueHeader:]...)
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
