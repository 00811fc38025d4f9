package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

const (
	// BackendName is the name in the directory marker and in backends.Config.
	BackendName = "pebble"
	// FormatVersion is the key layout version this build writes and reads.
	FormatVersion = 1
)

// Store is a fold in a Pebble database.
type Store struct {
	db    *pebble.DB
	dir   string     // guarded by mu (Relocate changes it)
	fs    *movableFS // what Pebble runs on: opts.FS, following Relocate
	opts  Options
	guard storekit.Guard
	meta  atomic.Pointer[meta] // state and counts of the last Apply

	mu      sync.Mutex            // serialises Apply
	inBatch map[string]fold.Prior // Apply's: what each key of the batch holds so far
	priors  []fold.Prior          // Apply's: the entries a large batch replaces (readPriors)
	keyBuf  []byte                // Apply's: the prefixed key being written
	snapsMu sync.Mutex            // guards snaps (not mu: taking a snapshot never waits for Apply)
	snaps   map[*Snapshot]struct{}
}

type meta struct {
	st fold.State
	c  counts
}

var (
	_ fold.Store     = (*Store)(nil)
	_ fold.KeyRanger = (*Store)(nil)
	_ fold.KeyRanger = (*Snapshot)(nil)
)

// Open opens the Pebble store in dir, creating it when dir is missing or empty. Errors:
// fold.ErrCorrupted (Pebble reports corruption, or the metadata does not decode),
// storekit.ErrBackendMismatch (dir holds another backend's store),
// storekit.ErrUnsupportedFormat, fold.ErrUnknownBackend (unrelated files), wrapped I/O errors.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	_, err := storekit.Prepare(opts.FS, dir, storekit.Marker{Backend: BackendName, Format: FormatVersion})
	if err != nil {
		return nil, fmt.Errorf("open pebble fold store: %w", err)
	}
	// Opening replays the WAL and may flush it: not on a full disk.
	if err := checkSpace(opts.FS, dir, opts.MinFreeBytes); err != nil {
		return nil, fmt.Errorf("open pebble fold store: %w", err)
	}
	fs := newMovableFS(opts.FS, dir)
	po := &pebble.Options{
		FS:                 fs,
		CacheSize:          opts.CacheSize,
		MemTableSize:       opts.MemTableSize,
		Logger:             opts.Logger,
		FormatMajorVersion: pebble.FormatNewest,
		EventListener:      eventListener(opts.Logger),
	}
	setLevelOptions(po.Levels[:])
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, wrapErr("open pebble fold store "+dir, err)
	}
	s := &Store{db: db, dir: dir, fs: fs, opts: opts, snaps: map[*Snapshot]struct{}{}, inBatch: map[string]fold.Prior{}}
	if err := s.loadMeta(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open pebble fold store %s: %w", dir, err)
	}
	return s, nil
}

// loadMeta reads (or, in a new store, writes) the format, state and counts.
func (s *Store) loadMeta() error {
	format, err := getRaw(s.db, keyFormat)
	if errors.Is(err, pebble.ErrNotFound) {
		// A store whose first batch never landed is empty whatever the marker says; one
		// that holds keys without its format record has lost its metadata.
		if err := s.requireEmpty(); err != nil {
			return err
		}
		b := s.db.NewBatch()
		defer b.Close()
		m := meta{}
		_ = b.Set(keyFormat, encodeFormat(), nil)
		_ = b.Set(keyState, encodeState(m.st), nil)
		_ = b.Set(keyCounts, m.c.encode(), nil)
		if err := s.db.Apply(b, pebble.Sync); err != nil {
			return wrapErr("initialise", err)
		}
		s.meta.Store(&m)
		return nil
	}
	if err != nil {
		return wrapErr("read format", err)
	}
	if !bytes.HasPrefix(format, []byte(formatMagic)) || len(format) != len(formatMagic)+2 {
		return fmt.Errorf("%w: format record %q", fold.ErrCorrupted, format)
	}
	if v := int(format[len(formatMagic)])<<8 | int(format[len(formatMagic)+1]); v != FormatVersion {
		return fmt.Errorf("%w: key layout version %d, this build reads %d", storekit.ErrUnsupportedFormat, v, FormatVersion)
	}
	m, err := readMeta(s.db)
	if err != nil {
		return err
	}
	s.meta.Store(&m)
	return nil
}

func (s *Store) requireEmpty() error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return wrapErr("check empty", err)
	}
	defer it.Close()
	if it.First() {
		return fmt.Errorf("%w: keys present (first %q) but no format record", fold.ErrCorrupted, it.Key())
	}
	return wrapErrNil("check empty", it.Error())
}

// eventListener reports corruption and background errors as errors. Pebble's default
// for corruption is Fatalf, which would let a damaged file kill the agent; here the
// corruption reaches the caller as fold.ErrCorrupted instead.
func eventListener(l pebble.Logger) *pebble.EventListener {
	return &pebble.EventListener{
		DataCorruption:  func(info pebble.DataCorruptionInfo) { l.Errorf("fold store: %s", info) },
		BackgroundError: func(err error) { l.Errorf("fold store: background error: %v", err) },
	}
}

// pebbleReader is what a DB and a Snapshot share.
type pebbleReader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

func getRaw(r pebbleReader, key []byte) ([]byte, error) {
	v, c, err := r.Get(key)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return bytes.Clone(v), nil
}

func readMeta(r pebbleReader) (meta, error) {
	raw, err := getRaw(r, keyState)
	if err != nil {
		return meta{}, wrapErr("read state", notFoundIsCorrupt(err))
	}
	st, err := decodeState(raw)
	if err != nil {
		return meta{}, err
	}
	raw, err = getRaw(r, keyCounts)
	if err != nil {
		return meta{}, wrapErr("read counts", notFoundIsCorrupt(err))
	}
	c, err := decodeCounts(raw)
	return meta{st: st, c: c}, err
}

func notFoundIsCorrupt(err error) error {
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%w: metadata missing", fold.ErrCorrupted)
	}
	return err
}

func (s *Store) reader() reader {
	return reader{store: &s.guard, r: s.db, meta: func() (meta, error) { return *s.meta.Load(), nil }, disk: s.diskBytes}
}

func (s *Store) diskBytes() uint64 { return s.db.Metrics().DiskSpaceUsage() }

// State returns the state of the last Apply.
func (s *Store) State() fold.State { return s.meta.Load().st }

// Get returns the live entry for key. Errors: fold.ErrClosed, fold.ErrCorrupted.
func (s *Store) Get(key string) (fold.Entry, bool, error) { return s.reader().Get(key) }

// Relocate runs move, which renames the store's directory to dir, while the store stays
// open: Pebble's file system calls wait meanwhile and then follow the directory to dir
// (open files follow the rename by themselves). A staged export becomes the fold this way
// with its caches warm (pkg/export). dir must not be inside the store's directory. The
// caller makes sure nothing else uses the old path. Errors: fold.ErrClosed, move's error
// (unwrapped; nothing moved).
func (s *Store) Relocate(dir string, move func() error) error {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	s.mu.Lock() // no Apply meanwhile
	defer s.mu.Unlock()
	if err := s.fs.move(dir, move); err != nil {
		return err
	}
	s.dir = dir
	return nil
}

// Lookup returns the entry for key, live or tombstone. Errors: fold.ErrClosed,
// fold.ErrCorrupted.
func (s *Store) Lookup(key string) (fold.Entry, bool, error) { return s.reader().Lookup(key) }

// Range streams entries under prefix in key order from one consistent Pebble iterator.
// Close waits for Range loops in flight, so a loop body must not Close the store.
// Errors: fold.ErrClosed, fold.ErrCorrupted.
func (s *Store) Range(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	return s.reader().Range(prefix, tombstones)
}

// RangeKeys is Range without copying values (fold.KeyRanger). Errors as for Range.
func (s *Store) RangeKeys(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	return s.reader().RangeKeys(prefix, tombstones)
}

// Stats returns the persisted counts (O(1)) and Pebble's disk usage. Errors: fold.ErrClosed.
func (s *Store) Stats() (fold.Stats, error) { return s.reader().Stats() }

// Snapshot returns a Pebble snapshot of the current state. Errors: fold.ErrClosed.
func (s *Store) Snapshot() (fold.Snapshot, error) {
	if err := s.guard.Acquire(); err != nil {
		return nil, err
	}
	defer s.guard.Release()
	snap := &Snapshot{store: s, snap: s.db.NewSnapshot()}
	m, err := readMeta(snap.snap)
	if err != nil {
		snap.snap.Close()
		return nil, err
	}
	snap.meta = m
	snap.reader = reader{store: &s.guard, own: &snap.own, r: snap.snap, meta: func() (meta, error) { return snap.meta, nil }, disk: s.diskBytes}
	s.snapsMu.Lock()
	s.snaps[snap] = struct{}{}
	s.snapsMu.Unlock()
	return snap, nil
}

// Flush fsyncs the write-ahead log, making every Apply so far durable. Errors:
// fold.ErrClosed, wrapped I/O errors.
func (s *Store) Flush() error {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return wrapErr("flush pebble fold store", err)
	}
	return nil
}

// Close waits for reads in flight, closes open snapshots, flushes the memtables to
// sstables (so that a cleanly closed store holds all its data in checksummed tables and
// reopening replays no WAL) and closes the database.
// Later calls on the store and its snapshots return fold.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	if !s.guard.Close() {
		return nil
	}
	s.snapsMu.Lock()
	for snap := range s.snaps {
		snap.close()
	}
	s.snaps = nil
	s.snapsMu.Unlock()
	err := s.db.Flush()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return wrapErr("close pebble fold store", err)
	}
	return nil
}

// Snapshot is a point-in-time view of a Pebble Store, backed by a Pebble snapshot (it
// pins the versions it sees until closed).
type Snapshot struct {
	reader
	store *Store
	snap  *pebble.Snapshot
	own   storekit.Guard
	meta  meta
}

var _ fold.Snapshot = (*Snapshot)(nil)

// Close releases the snapshot. It is idempotent.
func (s *Snapshot) Close() error {
	s.store.snapsMu.Lock()
	delete(s.store.snaps, s)
	s.store.snapsMu.Unlock()
	return s.close()
}

func (s *Snapshot) close() error {
	if !s.own.Close() {
		return nil
	}
	return wrapErrNil("close snapshot", s.snap.Close())
}

func wrapErrNil(op string, err error) error {
	if err == nil {
		return nil
	}
	return wrapErr(op, err)
}
