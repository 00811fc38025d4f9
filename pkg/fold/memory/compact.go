package memory

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

var errCompactionStopped = errors.New("compaction stopped by Close")

// maybeCompact starts a background compaction when the log has outgrown the contents.
// Called with mu held.
func (s *Store) maybeCompact() {
	size := s.size.Load()
	if s.opts.DisableAutoCompact || s.compacting || size < s.compactAfter ||
		float64(size) < s.opts.CompactRatio*float64(s.counts.compactedSize()) {
		return
	}
	s.compacting = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.compact()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.compacting = false
		if err != nil && !errors.Is(err, errCompactionStopped) {
			// Back off: retry once the log has grown by half again.
			s.compactAfter = s.size.Load() + s.size.Load()/2
			s.opts.Logger.Error("memory fold store: compaction failed", "dir", s.dir, "error", err)
		}
	}()
}

// Compact rewrites the log as one batch holding the current contents, then the batches
// applied meanwhile. It runs without blocking Apply except for the final switch-over.
// Errors: fold.ErrClosed, a compaction already running, wrapped I/O errors (the old log
// stays in use).
func (s *Store) Compact() error {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	s.mu.Lock()
	if s.compacting {
		s.mu.Unlock()
		return errors.New("compact memory fold store: a compaction is already running")
	}
	s.compacting = true
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	err := s.compact()
	s.mu.Lock()
	s.compacting = false
	s.mu.Unlock()
	return err
}

// compact writes a consistent view into a temp file without locks, copies the log bytes
// appended since, and switches over under mu: sync the temp file, rename it over the log,
// sync the directory. A crash at any point leaves either the old or the new log, both
// complete; a leftover temp file is removed on open.
func (s *Store) compact() (err error) {
	s.mu.Lock()
	v, from, old := s.cur.Load(), s.size.Load(), s.f
	s.mu.Unlock()

	tmpPath := s.path(compactName)
	tmp, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	switched := false
	defer func() {
		if !switched {
			tmp.Close()
			os.Remove(tmpPath)
		}
	}()
	if err := s.writeView(tmp, v); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	// Copy what was appended meanwhile, first without the lock, then the rest under it.
	to := s.size.Load()
	if err := copyRange(tmp, old, from, to); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return fmt.Errorf("compact: log unusable: %w", s.broken)
	}
	if err := copyRange(tmp, old, to, s.size.Load()); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("compact: sync: %w", err)
	}
	fi, err := tmp.Stat()
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	if err := os.Rename(tmpPath, s.path(LogName)); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	switched = true
	s.f = tmp
	s.size.Store(fi.Size())
	old.Close()
	if err := storekit.SyncDir(vfs.Default, s.dir); err != nil {
		// The new log is in place and synced; only the rename may not be durable yet, and
		// either name holds a complete log. Later Applies fsync the file, not the dir.
		return fmt.Errorf("compact: sync dir: %w", err)
	}
	s.compactAfter = s.opts.CompactMinBytes
	s.compactions.Add(1)
	return nil
}

// writeView writes header, contents and cursor of v.
func (s *Store) writeView(f *os.File, v *view) error {
	bw := bufio.NewWriterSize(f, 1<<20)
	buf := appendHeader(nil)
	n := 0
	for k, sl := range v.t.Ascend(first()) {
		if sl.live() {
			buf = appendPut(buf, k, string(sl[slotHeader:]), sl.rev())
		} else {
			buf = appendDelete(buf, k, sl.rev(), false)
		}
		if len(buf) >= 64<<10 {
			if _, err := bw.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		if n++; n%4096 == 0 {
			select {
			case <-s.stop:
				return errCompactionStopped
			default:
			}
		}
	}
	buf = appendCursor(buf, v.st)
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	return bw.Flush()
}

func copyRange(dst, src *os.File, from, to int64) error {
	if to <= from {
		return nil
	}
	if _, err := dst.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	_, err := io.Copy(dst, io.NewSectionReader(src, from, to-from))
	return err
}
