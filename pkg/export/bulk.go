package export

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// BulkLoader is implemented by stores that can be filled, when empty, much faster than by
// Apply: from one sorted stream, without a write-ahead log or per-batch work. Stage uses
// it when the staging store has it (pebble: sstables ingested at once; memory: the log
// written sequentially).
type BulkLoader interface {
	// BulkLoad fills the empty store with entries, in strictly increasing key order, and
	// records st. It must record nothing (the store stays empty, at State{}) unless the
	// sequence ended without an error: Stage's sequence ends only after the export's
	// trailer verified. An entry's Key and Value are valid only until the next step of
	// the sequence. scratchDir is a directory inside the store's directory the loader may
	// use (and must remove). Errors: the sequence's error, or the store's.
	BulkLoad(scratchDir string, entries iter.Seq2[fold.Entry, error], st fold.State) error
}

// bulkScratch is the scratch directory name inside the staging store's directory.
const bulkScratch = "bulk.tmp"

// ctxCheckEvery is how many records a bulk load reads between checks of its context.
const ctxCheckEvery = 4096

// bulkFill stages the export with the store's bulk loader. The records reach the loader
// as the reader verifies their frames; the loader records the export's cursor only once
// the sequence ended, which it does only after the trailer verified. With index, the
// records are also recorded in s.keys (keyIndex), unless that outgrows its bound.
func (s *Staged) bulkFill(ctx context.Context, bl BulkLoader, rd *Reader, index bool) error {
	h := rd.Header()
	rd.prefetchFrames()
	defer rd.stopPrefetch()
	var idx *keyIndex
	if index {
		idx = newKeyIndex(h.Count())
	}
	entries := func(yield func(fold.Entry, error) bool) {
		n := 0
		for e, err := range rd.borrowed() {
			if n++; err == nil && n%ctxCheckEvery == 0 {
				err = ctx.Err()
			}
			if idx != nil && err == nil && !idx.add(e) {
				idx = nil
			}
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
	if err := bl.BulkLoad(filepath.Join(s.dir, bulkScratch), entries, fold.State{Cursor: h.Cursor}); err != nil {
		return fmt.Errorf("bulk load staging store: %w", err)
	}
	if !rd.Verified() {
		return errors.New("bulk load stopped before the export's end")
	}
	if err := s.checkFilled(h); err != nil {
		return err
	}
	if idx != nil {
		s.keys.Store(idx)
	}
	return nil
}

// checkFilled checks the filled staging store against the header and makes it durable.
func (s *Staged) checkFilled(h Header) error {
	if st := s.Store.State(); st != (fold.State{Cursor: h.Cursor}) {
		return fmt.Errorf("staging store at %+v after the load, want cursor %d", st, h.Cursor)
	}
	stats, err := s.Store.Stats()
	if err != nil {
		return fmt.Errorf("staging store stats: %w", err)
	}
	if stats.Live != h.Live || stats.Tombstones != h.Tombstones {
		return fmt.Errorf("staging store holds %d live and %d tombstones, the export %d and %d",
			stats.Live, stats.Tombstones, h.Live, h.Tombstones)
	}
	if err := s.Store.Flush(); err != nil {
		return fmt.Errorf("flush staging store: %w", err)
	}
	return nil
}
