package pebble

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// Apply writes muts, st and the updated counts in one Pebble batch (fsynced with
// SyncEveryApply). Errors: fold.ErrCursorRegression, storekit.ErrInvalidMutation,
// fold.ErrClosed, fold.ErrCorrupted (a replaced entry does not decode), or a wrapped I/O
// error; on any error nothing is applied.
func (s *Store) Apply(muts []fold.Mutation, st fold.State) error {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	if err := storekit.CheckMutations(muts); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := *s.meta.Load()
	if st.Cursor < m.st.Cursor && !st.Resyncing {
		return fmt.Errorf("apply: %w: cursor %d is below %d", fold.ErrCursorRegression, st.Cursor, m.st.Cursor)
	}
	b := s.db.NewIndexedBatch()
	defer b.Close()
	for _, mu := range muts {
		k := entryKey(mu.Key)
		// The counts need what the mutation replaces (in this batch or the store).
		raw, c, err := b.Get(k)
		switch {
		case err == nil:
			old, derr := decodeEntry([]byte(mu.Key), raw)
			c.Close()
			if derr != nil {
				return fmt.Errorf("apply: %w", derr)
			}
			m.c.add(old, -1)
		case !errors.Is(err, pebble.ErrNotFound):
			return wrapErr("apply", err)
		}
		switch mu.Op {
		case fold.MutPut:
			err = b.Set(k, encodeValue(mu.Revision, true, mu.Value), nil)
			m.c.add(fold.Entry{Key: mu.Key, Value: mu.Value, Live: true}, 1)
		case fold.MutDelete:
			err = b.Set(k, encodeValue(mu.Revision, false, nil), nil)
			m.c.add(fold.Entry{Key: mu.Key}, 1)
		case fold.MutForget:
			err = b.Delete(k, nil)
		}
		if err != nil {
			return wrapErr("apply", err)
		}
	}
	m.st = st
	if err := b.Set(keyState, encodeState(st), nil); err != nil {
		return wrapErr("apply", err)
	}
	if err := b.Set(keyCounts, m.c.encode(), nil); err != nil {
		return wrapErr("apply", err)
	}
	wo := pebble.Sync
	if s.opts.Sync == SyncNone {
		wo = pebble.NoSync
	}
	if err := s.db.Apply(b, wo); err != nil {
		return wrapErr("apply", err)
	}
	s.meta.Store(&m)
	return nil
}
