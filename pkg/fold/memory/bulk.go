package memory

import (
	"errors"
	"fmt"
	"iter"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// ErrNotEmpty: BulkLoad was called on a store that holds something.
var ErrNotEmpty = storekit.ErrNotEmpty

// bulkWriteBytes is the size of the log writes of BulkLoad.
const bulkWriteBytes = 1 << 20

// BulkLoad fills an empty store (State() zero, no entries) with entries, which must come
// in strictly increasing key order, and records st: the records are appended to the log
// in large sequential writes and inserted into the tree as they come, and st's CURSOR
// record is appended (and the log fsynced) only after the sequence ended without an
// error. The whole load is one batch of the log: a crash before its CURSOR record leaves a
// store that reopens empty (a torn batch is discarded), and on error the log is cut back
// and the store stays empty and usable. Readers see nothing of the load until it is
// complete. scratchDir is not used (the memory store needs none).
//
// The entries' Key and Value are copied; the sequence may reuse their memory after each
// step. Errors: ErrNotEmpty, storekit.ErrInvalidMutation (order, empty or over-long key,
// revision 0, a tombstone with a value), the sequence's error (unwrapped), fold.ErrClosed,
// wrapped I/O errors.
func (s *Store) BulkLoad(_ string, entries iter.Seq2[fold.Entry, error], st fold.State) error {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.broken != nil:
		return fmt.Errorf("bulk load: log unusable after an earlier write failure: %w", s.broken)
	case s.st != (fold.State{}) || s.w.Len() > 0:
		return fmt.Errorf("bulk load: %w: state %+v, %d keys", ErrNotEmpty, s.st, s.w.Len())
	}
	start := s.size.Load()
	c, end, err := s.bulkWrite(start, entries, st)
	if err != nil {
		// Nothing was published: drop the half-built tree and the records written.
		s.w, s.counts = newTree(), counts{}
		if terr := s.f.Truncate(start); terr != nil {
			s.broken = fmt.Errorf("bulk load: %w; truncate back: %w", err, terr)
		}
		return err
	}
	s.counts, s.st = c, st
	s.size.Store(end)
	s.publish()
	return nil
}

// bulkWrite appends the records of entries and a CURSOR record for st at off, inserting
// the entries into s.w; it returns the counts and the log's new end.
func (s *Store) bulkWrite(off int64, entries iter.Seq2[fold.Entry, error], st fold.State) (counts, int64, error) {
	var c counts
	buf := make([]byte, 0, bulkWriteBytes+64<<10)
	flush := func() error {
		if _, err := s.f.WriteAt(buf, off); err != nil {
			return fmt.Errorf("bulk load: write log: %w", err)
		}
		off += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	var last []byte
	n := 0
	for e, err := range entries {
		if err != nil {
			return counts{}, 0, err
		}
		if err := storekit.CheckBulkEntry(e, last, n); err != nil {
			return counts{}, 0, fmt.Errorf("bulk load: %w", err)
		}
		if e.Live {
			buf = appendPut(buf, e.Key, e.Value, e.Revision)
		} else {
			buf = appendDelete(buf, e.Key, e.Revision, false)
		}
		k, sl := newEntry(e.Key, e.Revision, e.Live, e.Value)
		s.w.ReplaceOrInsert(k, sl)
		c.add(k, sl)
		last = append(last[:0], e.Key...)
		n++
		if len(buf) >= bulkWriteBytes {
			if err := flush(); err != nil {
				return counts{}, 0, err
			}
		}
	}
	buf = appendCursor(buf, st)
	if err := flush(); err != nil {
		return counts{}, 0, err
	}
	if err := s.f.Sync(); err != nil {
		return counts{}, 0, fmt.Errorf("bulk load: sync log: %w", err)
	}
	return c, off, nil
}

// Relocate tells the store that its directory was renamed to dir while it was open (its
// log stays open: the memory store reads nothing else from the directory after Open), so
// a staged store can become the fold without a close and a replay of its whole log.
// Errors: fold.ErrClosed, a compaction running (it writes in the directory).
func (s *Store) Relocate(dir string) error {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.compacting {
		return errors.New("relocate memory fold store: a compaction is running")
	}
	s.dir = dir
	return nil
}
