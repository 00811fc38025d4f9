package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// Apply writes muts, st and the updated counts in one Pebble batch (fsynced with
// SyncEveryApply). Errors: fold.ErrCursorRegression (a lower cursor without st.Resyncing),
// storekit.ErrInvalidMutation,
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
	b := s.db.NewBatch()
	defer b.Close()
	// The counts need what each mutation replaces: from the store for the first mutation
	// of a key, from this batch for later ones.
	inBatch := make(map[string]prior, len(muts))
	var k []byte
	for _, mu := range muts {
		k = append(append(k[:0], prefixEntry), mu.Key...)
		p, ok := inBatch[mu.Key]
		if !ok && !mu.Fresh {
			var err error
			if p, err = s.prior(k); err != nil {
				return fmt.Errorf("apply: %w", err)
			}
		}
		if p.exists {
			m.c.remove(len(mu.Key), p.valueLen, p.live)
		}
		var err error
		switch mu.Op {
		case fold.MutPut:
			err = setEntry(b, k, mu.Revision, true, mu.Value)
			m.c.add(len(mu.Key), len(mu.Value), true)
			p = prior{exists: true, live: true, valueLen: len(mu.Value)}
		case fold.MutDelete:
			err = setEntry(b, k, mu.Revision, false, nil)
			m.c.add(len(mu.Key), 0, false)
			p = prior{exists: true}
		case fold.MutForget:
			err = b.Delete(k, nil)
			p = prior{}
		}
		if err != nil {
			return wrapErr("apply", err)
		}
		inBatch[mu.Key] = p
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

// setEntry adds an entry to the batch, encoding it in place (see encodeValue).
func setEntry(b *pebble.Batch, k []byte, rev uint64, live bool, value []byte) error {
	op := b.SetDeferred(len(k), valueHeader+len(value))
	copy(op.Key, k)
	binary.BigEndian.PutUint64(op.Value, rev)
	op.Value[8] = 0
	if live {
		op.Value[8] = flagLive
	}
	copy(op.Value[valueHeader:], value)
	return op.Finish()
}

// prior is what a key holds before a mutation.
type prior struct {
	exists, live bool
	valueLen     int
}

// prior reads the stored entry for k (with its prefix) without copying the value.
func (s *Store) prior(k []byte) (prior, error) {
	raw, c, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return prior{}, nil
	}
	if err != nil {
		return prior{}, wrapErr("read replaced entry", err)
	}
	defer c.Close()
	if err := checkValue(k[1:], raw); err != nil {
		return prior{}, err
	}
	return prior{exists: true, live: raw[8]&flagLive != 0, valueLen: len(raw) - valueHeader}, nil
}
