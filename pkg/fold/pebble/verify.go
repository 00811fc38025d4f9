package pebble

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// Verify checks the whole store at one snapshot: Pebble's level invariants and block
// checksums (every block is read), that every key belongs to the layout, that every entry
// decodes, and that the persisted counts equal a recount. It runs beside Apply and reads.
// Errors: fold.ErrCorrupted with detail, fold.ErrClosed, wrapped I/O errors.
func (s *Store) Verify() error {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	if err := s.db.CheckLevels(nil); err != nil {
		return wrapErr("verify pebble fold store: check levels", markAll(err))
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	m, err := readMeta(snap)
	if err != nil {
		return fmt.Errorf("verify pebble fold store: %w", err)
	}
	it, err := snap.NewIter(nil)
	if err != nil {
		return wrapErr("verify pebble fold store", err)
	}
	defer it.Close()
	var c counts
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		raw, err := it.ValueAndErr()
		if err != nil {
			return wrapErr("verify pebble fold store", err)
		}
		switch {
		case len(k) > 0 && k[0] == prefixEntry:
			e, err := decodeEntry(k[1:], raw)
			if err != nil {
				return fmt.Errorf("verify pebble fold store: %w", err)
			}
			c.add(len(e.Key), len(e.Value), e.Live)
		case bytes.Equal(k, keyFormat) || bytes.Equal(k, keyState) || bytes.Equal(k, keyCounts):
		default:
			return fmt.Errorf("verify pebble fold store: %w: unexpected key %q", fold.ErrCorrupted, k)
		}
	}
	if err := it.Error(); err != nil {
		return wrapErr("verify pebble fold store", err)
	}
	if c != m.c && !m.st.Resyncing { // counts are approximate during a resync (see Apply)
		return fmt.Errorf("verify pebble fold store: %w: stored counts %+v, recount %+v", fold.ErrCorrupted, m.c, c)
	}
	return nil
}

// markAll treats any failure of CheckLevels as corruption: it reports broken invariants
// with plain errors.
func markAll(err error) error {
	if pebble.IsCorruptionError(err) {
		return err
	}
	return fmt.Errorf("%w: %w", fold.ErrCorrupted, err)
}
