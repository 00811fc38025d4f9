package memory

import (
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

const (
	// BackendName is the name in the directory marker and in backends.Config.
	BackendName = "memory"
	// FormatVersion is the store format this build writes (and the log header's version).
	FormatVersion = logVersion

	// LogName is the log file inside the store directory.
	LogName     = "fold.log"
	compactName = LogName + ".compact"
)

// Store is a fold held in RAM and persisted in an append-only log.
type Store struct {
	dir   string
	opts  Options
	guard storekit.Guard
	cur   atomic.Pointer[view]
	size  atomic.Int64 // log bytes (DiskBytes)

	mu     sync.Mutex // serialises Apply, Flush, Verify, Close and compaction's switch-over
	w      *tree      // the writer's tree; cur holds clones of it
	counts counts
	st     fold.State
	f      *os.File
	broken error  // set when the log's end is unknown after a failed write: Apply refuses
	buf    []byte // Apply's encoding buffer, reused (see maxKeptLogBuf)

	arena arenaUse // entries a bulk load or replay carved from shared blocks (see arenaUse)

	compactions  atomic.Int64 // completed compactions
	compacting   bool
	compactAfter int64 // no automatic compaction below this size (backs off after failures)
	stop         chan struct{}
	wg           sync.WaitGroup
}

var (
	_ fold.Store     = (*Store)(nil)
	_ fold.KeyRanger = (*Store)(nil)
	_ fold.KeyRanger = (*Snapshot)(nil)
)

// Open opens the memory store in dir, creating it when dir is missing or empty. It
// replays the log into RAM, discarding a torn final batch (and truncating it from the
// file). Errors: fold.ErrCorrupted when the log fails verification,
// storekit.ErrBackendMismatch when dir holds another backend's store,
// fold.ErrUnknownBackend when dir holds unrelated files.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	fresh, err := storekit.Prepare(vfs.Default, dir, storekit.Marker{Backend: BackendName, Format: FormatVersion})
	if err != nil {
		return nil, fmt.Errorf("open memory fold store: %w", err)
	}
	s := &Store{dir: dir, opts: opts, w: newTree(), stop: make(chan struct{})}
	if err := s.load(fresh); err != nil {
		return nil, fmt.Errorf("open memory fold store %s: %w", dir, err)
	}
	s.publish()
	s.compactAfter = s.opts.CompactMinBytes
	return s, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

// load replays the log, creating an empty one when missing.
func (s *Store) load(fresh bool) error {
	if err := os.Remove(s.path(compactName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove unfinished compaction: %w", err)
	}
	f, err := os.OpenFile(s.path(LogName), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return s.create()
	}
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		var end int64
		var arena entryArena
		end, err = readLog(f, fi.Size(), func(m fold.Mutation) { _, _, _ = s.counts.apply(s.w, m, &arena) },
			func(st fold.State) { s.st = st })
		if err == nil {
			s.settle(&arena)
		}
		if err == nil && end < fi.Size() {
			// Drop the torn tail so that new batches follow the last complete one.
			if err = f.Truncate(end); err == nil {
				err = f.Sync()
			}
		}
		s.size.Store(end)
	}
	if err != nil {
		f.Close()
		return err
	}
	s.f = f
	return nil
}

// settle finishes a replay of the log into the writer's tree, whose entries were carved
// from a. It rebuilds the tree with full nodes (inserted one at a time in log order, as a
// replay does, nodes end up about two-thirds full unless the keys came in order, and the
// items are most of the per-entry memory after the entries), and records a's blocks,
// counting as dead the entries the replay replaced or removed; re-homes when that is
// most of them (see arenaUse).
func (s *Store) settle(a *entryArena) {
	b := newTreeBuilder()
	var live int64
	for k, sl := range s.w.Ascend(first()) {
		b.Add(k, sl)
		if n := len(k) + len(sl); carved(n) {
			live += int64(n)
		}
	}
	s.w = b.Build()
	s.arena.add(a.blocks, a.bytes)
	s.arena.dead += a.bytes - live
	if s.arena.wasteful() {
		s.rehome()
	}
}

// create writes an empty log (header only) atomically.
func (s *Store) create() error {
	f, err := writeAtomically(s.dir, LogName, appendHeader(nil))
	if err != nil {
		return fmt.Errorf("create log: %w", err)
	}
	s.f = f
	s.size.Store(int64(headerLen))
	return nil
}

// writeAtomically writes name in dir via a synced temp file and a rename, and returns it
// open for reading and writing.
func writeAtomically(dir, name string, data []byte) (*os.File, error) {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = storekit.SyncDir(vfs.Default, dir)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// publish makes the writer's tree visible to readers. Called with mu held (or before the
// store is shared).
func (s *Store) publish() {
	s.cur.Store(&view{t: s.w.Clone(), st: s.st, counts: s.counts})
}

func (s *Store) reader() reader {
	return reader{store: &s.guard, v: s.cur.Load, disk: func() uint64 { return uint64(s.size.Load()) }}
}

// State returns the state of the last Apply.
func (s *Store) State() fold.State { return s.cur.Load().st }

// Get returns the live entry for key. Errors: fold.ErrClosed.
func (s *Store) Get(key string) (fold.Entry, bool, error) { return s.reader().Get(key) }

// Lookup returns the entry for key, live or tombstone. Errors: fold.ErrClosed.
func (s *Store) Lookup(key string) (fold.Entry, bool, error) { return s.reader().Lookup(key) }

// Range iterates, in key order, the state current when the loop starts (one consistent
// view, without blocking Apply). Errors: fold.ErrClosed.
func (s *Store) Range(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	return s.reader().Range(prefix, tombstones)
}

// RangeKeys is Range without copying values (fold.KeyRanger). Errors as for Range.
func (s *Store) RangeKeys(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	return s.reader().RangeKeys(prefix, tombstones)
}

// Stats counts the current contents in O(1); DiskBytes is the log's size.
// Errors: fold.ErrClosed.
func (s *Store) Stats() (fold.Stats, error) { return s.reader().Stats() }

// Snapshot returns the current view in O(1) (see Snapshot). Errors: fold.ErrClosed.
func (s *Store) Snapshot() (fold.Snapshot, error) {
	if err := s.guard.Acquire(); err != nil {
		return nil, err
	}
	defer s.guard.Release()
	return newSnapshot(&s.guard, s.cur.Load(), uint64(s.size.Load())), nil
}

// Flush fsyncs the log. Errors: fold.ErrClosed, wrapped I/O errors.
func (s *Store) Flush() error {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("flush memory fold store: %w", err)
	}
	return nil
}

// Close stops a running compaction (its temp file is discarded), waits for reads in
// flight, fsyncs and closes the log. Reads of the store and its snapshots then return
// fold.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	if !s.guard.Close() {
		return nil
	}
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close memory fold store: %w", err)
	}
	return nil
}
