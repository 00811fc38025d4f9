package foldtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

func testSnapshotIsolation(t *testing.T, open OpenFunc) {
	s := openT(t, open, t.TempDir())
	b1 := Batch{Muts: []fold.Mutation{put("a", "1", 1), put("b", "1", 2), put("c", "1", 3)}, State: fold.State{Cursor: 3}}
	mustApply(t, s, b1)
	before := NewModel()
	before.Apply(b1)
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b2 := Batch{Muts: []fold.Mutation{put("a", "2", 4), del("b", 5), forget("c"), put("d", "2", 6)}, State: fold.State{Cursor: 6, Resyncing: true}}
	mustApply(t, s, b2)
	after := before.Clone()
	after.Apply(b2)
	RequireEqual(t, snap, before)
	RequireEqual(t, s, after)
	snap2, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap2.Close()
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	if err := snap.Close(); err != nil {
		t.Fatalf("second snapshot close: %v", err)
	}
	if _, _, err := snap.Get("a"); !errors.Is(err, fold.ErrClosed) {
		t.Fatalf("Get on a closed snapshot: %v, want ErrClosed", err)
	}
	RequireEqual(t, snap2, after)
}

// testConcurrentReaders: every batch rewrites all keys with its own number; readers must
// always see one batch's values across a Range or a Snapshot, never a mix. Run with -race.
func testConcurrentReaders(t *testing.T, open OpenFunc) {
	const keys, batches, readers = 40, 60, 3
	s := openT(t, open, t.TempDir())
	enc := func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
	apply := func(n uint64) error {
		muts := make([]fold.Mutation, keys)
		for i := range muts {
			muts[i] = fold.Mutation{Op: fold.MutPut, Key: fmt.Sprintf("k%02d", i), Value: enc(n), Revision: n}
		}
		return s.Apply(muts, fold.State{Cursor: n})
	}
	if err := apply(1); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, readers+1)
	uniform := func(r fold.Reader) (uint64, error) {
		var first uint64
		n := 0
		for e, err := range r.Range("k", false) {
			if err != nil {
				return 0, err
			}
			v := binary.BigEndian.Uint64(e.Value)
			if n == 0 {
				first = v
			} else if v != first || e.Revision != first {
				return 0, fmt.Errorf("range mixes batches %d and %d at %s", first, v, e.Key)
			}
			n++
		}
		if n != keys {
			return 0, fmt.Errorf("range saw %d keys, want %d", n, keys)
		}
		return first, nil
	}
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for !done.Load() {
				v, err := uniform(s)
				if err == nil && v < last {
					err = fmt.Errorf("store went back from batch %d to %d", last, v)
				}
				last = v
				if err == nil {
					var snap fold.Snapshot
					if snap, err = s.Snapshot(); err == nil {
						if v, err = uniform(snap); err == nil && v != snap.State().Cursor {
							err = fmt.Errorf("snapshot at cursor %d holds batch %d", snap.State().Cursor, v)
						}
						snap.Close()
					}
				}
				if err == nil {
					var e fold.Entry
					if e, _, err = s.Get("k07"); err == nil && binary.BigEndian.Uint64(e.Value) < last {
						err = fmt.Errorf("get went back to batch %d", binary.BigEndian.Uint64(e.Value))
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for n := uint64(2); n <= batches; n++ {
		if err := apply(n); err != nil {
			errs <- err
			break
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
