package memory

import (
	"iter"
	"strings"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// view is an immutable published state of the fold: Apply builds the next one on the
// writer's copy-on-write tree and swaps it in, so readers never lock and never see half a
// batch.
type view struct {
	t      *tree
	st     fold.State
	counts counts
}

// reader serves fold.Reader from a view while its store (and, for a snapshot, the
// snapshot itself) is open.
type reader struct {
	store *storekit.Guard
	own   *storekit.Guard // nil for the store itself
	v     func() *view
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

func (r reader) State() fold.State { return r.v().st }

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
	_, s, ok := r.v().t.Get(key)
	if !ok {
		return fold.Entry{}, false, nil
	}
	return entryOf(key, s), true, nil
}

// Range iterates the view current when the loop starts; it holds no lock, so it neither
// blocks nor is blocked by Apply.
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
		v := r.v()
		r.release()
		for k, s := range v.t.Ascend(atLeast(prefix)) {
			if !strings.HasPrefix(k, prefix) {
				return
			}
			if !s.live() && !tombstones {
				continue
			}
			e := fold.Entry{Key: k, Revision: s.rev(), Live: s.live()}
			if values {
				e = entryOf(k, s)
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

func (r reader) Stats() (fold.Stats, error) {
	if err := r.acquire(); err != nil {
		return fold.Stats{}, err
	}
	defer r.release()
	c := r.v().counts
	return fold.Stats{Live: c.live, Tombstones: c.tombstones, LiveBytes: c.liveBytes, DiskBytes: r.disk()}, nil
}

// Snapshot is a point-in-time view of a memory Store: an immutable copy-on-write tree
// shared with the store, so taking one is O(1) and costs memory only for the nodes later
// Applies replace. It is readable until it or its store is closed.
type Snapshot struct {
	reader
	own storekit.Guard
}

var _ fold.Snapshot = (*Snapshot)(nil)

func newSnapshot(store *storekit.Guard, v *view, disk uint64) *Snapshot {
	snap := &Snapshot{}
	snap.reader = reader{
		store: store,
		own:   &snap.own,
		v:     func() *view { return v },
		disk:  func() uint64 { return disk },
	}
	return snap
}

// Close releases the snapshot. It is idempotent.
func (s *Snapshot) Close() error {
	s.own.Close()
	return nil
}
