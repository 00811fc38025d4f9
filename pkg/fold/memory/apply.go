package memory

import (
	"fmt"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// Apply appends muts and a CURSOR record for st to the log as one group (fsynced with
// SyncEveryApply), then publishes the new view. Errors: fold.ErrCursorRegression (a lower
// cursor without st.Resyncing), storekit.ErrInvalidMutation, fold.ErrClosed, or a wrapped
// I/O error after which the view is unchanged; if the log could not be restored to its
// previous end, later Applies fail too until the store is reopened.
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
	if s.broken != nil {
		return fmt.Errorf("apply: log unusable after an earlier write failure: %w", s.broken)
	}
	if st.Cursor < s.st.Cursor && !st.Resyncing {
		return fmt.Errorf("apply: %w: cursor %d is below %d", fold.ErrCursorRegression, st.Cursor, s.st.Cursor)
	}
	buf := s.logBuf(muts)
	for _, m := range muts {
		buf = appendMutation(buf, m)
	}
	buf = appendCursor(buf, st)
	err := s.append(buf)
	if cap(buf) <= maxKeptLogBuf {
		s.buf = buf[:0]
	}
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	for _, m := range muts {
		if k, sl, had := s.counts.apply(s.w, m, nil); had {
			s.arena.dropped(k, sl)
		}
	}
	if s.arena.wasteful() {
		s.rehome()
	}
	s.st = st
	s.publish()
	s.maybeCompact()
	return nil
}

// maxKeptLogBuf bounds the encoding buffer a store keeps between Applies: catch-up batches
// (10k updates of a few hundred bytes) reuse it; a rare batch of huge values does not pin
// its size.
const maxKeptLogBuf = 8 << 20

// logBuf returns an empty buffer with room for the records of muts and the cursor, so
// encoding a batch neither grows nor (usually) allocates it. Called with mu held.
func (s *Store) logBuf(muts []fold.Mutation) []byte {
	n := recordOverhead + cursorLen + cursorFlagLen
	for i := range muts {
		n += recordOverhead + len(muts[i].Key) + len(muts[i].Value)
	}
	if cap(s.buf) < n {
		return make([]byte, 0, n)
	}
	return s.buf[:0]
}

// append writes buf at the log's end and syncs per the options. On failure it cuts the
// log back to its previous end, so a half-written group never precedes later ones.
func (s *Store) append(buf []byte) error {
	end := s.size.Load()
	_, err := s.f.WriteAt(buf, end)
	if err == nil && s.opts.Sync == SyncEveryApply {
		err = s.f.Sync()
	}
	if err != nil {
		if terr := s.f.Truncate(end); terr != nil {
			s.broken = fmt.Errorf("write log: %w; truncate back: %w", err, terr)
		} else if s.opts.Sync == SyncEveryApply {
			// After a failed fsync the page cache may not match the disk (fsyncgate):
			// refuse to build on it.
			s.broken = fmt.Errorf("sync log: %w", err)
		}
		return fmt.Errorf("write log: %w", err)
	}
	s.size.Store(end + int64(len(buf)))
	return nil
}
