package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"iter"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// ErrNotEmpty: BulkLoad was called on a store that holds something.
var ErrNotEmpty = storekit.ErrNotEmpty

// BulkLoad fills an empty store (State() zero, no entries) with entries and records st,
// without the write-ahead log, memtables or compactions of Apply: the entries, which
// must come in strictly increasing key order, are written into sstables in scratchDir
// (created, and removed when BulkLoad returns; it must be on the store's file system),
// then the state and the counts go into one more sstable, and all of them are ingested
// with one Pebble Ingest, which is atomic. Nothing is ingested unless the sequence ended
// without an error, so a failed or interrupted load leaves the store empty at State{}: a
// crash never leaves a store that claims st without holding every entry.
//
// The entries' Key and Value are copied; the sequence may reuse their memory after each
// step. Errors: ErrNotEmpty, storekit.ErrInvalidMutation (order, empty or over-long key,
// revision 0, a tombstone with a value), the sequence's error (unwrapped), fold.ErrClosed,
// wrapped I/O errors. On error the store is still usable (and empty).
func (s *Store) BulkLoad(scratchDir string, entries iter.Seq2[fold.Entry, error], st fold.State) (err error) {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.meta.Load(); m.st != (fold.State{}) || m.c != (counts{}) {
		return fmt.Errorf("bulk load: %w: state %+v, %d live, %d tombstones", ErrNotEmpty, m.st, m.c.live, m.c.tombstones)
	}
	if err := s.requireNoEntries(); err != nil {
		return err
	}
	fs := s.opts.FS
	if err := fs.MkdirAll(scratchDir, 0o755); err != nil {
		return fmt.Errorf("bulk load: scratch directory: %w", err)
	}
	defer func() {
		if rerr := fs.RemoveAll(scratchDir); rerr != nil && err == nil {
			err = fmt.Errorf("bulk load: remove scratch directory: %w", rerr)
		}
	}()
	b := &bulkWriter{fs: fs, dir: scratchDir, opts: s.writerOptions()}
	defer b.abort()
	c, err := b.writeEntries(entries)
	if err != nil {
		return err
	}
	// The metadata keys sort after every entry ('m' > 'e'): a table of their own.
	if err := b.next(); err != nil {
		return err
	}
	for _, kv := range [][2][]byte{
		{keyCounts, c.encode()},
		{keyFormat, encodeFormat()},
		{keyState, encodeState(st)},
	} {
		if err := b.w.Set(kv[0], kv[1]); err != nil {
			return wrapErr("bulk load: write metadata", err)
		}
	}
	if err := b.finish(); err != nil {
		return err
	}
	if err := s.db.Ingest(context.Background(), b.paths); err != nil {
		return wrapErr("bulk load: ingest", err)
	}
	b.paths = nil // Ingest moved them into the database
	s.meta.Store(&meta{st: st, c: c})
	return nil
}

// requireNoEntries fails with ErrNotEmpty when the store holds an entry.
func (s *Store) requireNoEntries() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEntry}, UpperBound: []byte{prefixEntry + 1}})
	if err != nil {
		return wrapErr("bulk load", err)
	}
	defer it.Close()
	if it.First() {
		return fmt.Errorf("bulk load: %w: holds %q", ErrNotEmpty, it.Key()[1:])
	}
	return wrapErrNil("bulk load", it.Error())
}

// writerOptions are the options the database itself writes bottom-level tables with (the
// same comparer, key schema, block sizes, compression and bloom filters as Open sets:
// setLevelOptions).
func (s *Store) writerOptions() sstable.WriterOptions {
	po := &pebble.Options{FormatMajorVersion: s.db.FormatMajorVersion()}
	setLevelOptions(po.Levels[:])
	po.EnsureDefaults()
	return po.MakeWriterOptions(len(po.Levels)-1, s.db.TableFormat())
}

// bulkWriter writes a sequence of sstables in dir.
type bulkWriter struct {
	fs    vfs.FS
	dir   string
	opts  sstable.WriterOptions
	w     *sstable.Writer
	paths []string // finished tables, and the one being written
}

// next finishes the current table, if any, and starts a new one.
func (b *bulkWriter) next() error {
	if err := b.finish(); err != nil {
		return err
	}
	path := b.tablePath(len(b.paths))
	f, err := b.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("bulk load: create table: %w", err)
	}
	b.paths = append(b.paths, path)
	b.w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), b.opts)
	return nil
}

// finish closes the current table (Close fsyncs it, as Ingest requires).
func (b *bulkWriter) finish() error {
	if b.w == nil {
		return nil
	}
	w := b.w
	b.w = nil
	if err := w.Close(); err != nil {
		return wrapErr("bulk load: finish table", err)
	}
	return nil
}

// abort closes a table still being written; the scratch directory removal takes the files.
func (b *bulkWriter) abort() {
	if b.w != nil {
		_ = b.w.Close()
		b.w = nil
	}
}

// RangeBorrowed is Range without copying: each entry's Key and Value alias the iterator's
// memory and are valid only until the loop body returns (an export streams them into its
// frames; Range's two allocations per entry would dominate its CPU time). Errors as Range.
func (s *Store) RangeBorrowed(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	return s.reader().RangeBorrowed(prefix, tombstones)
}

// RangeBorrowed is Range without copying (see Store.RangeBorrowed); a Snapshot has it too.
func (r reader) RangeBorrowed(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	lower, upper := prefixBounds(prefix)
	return r.rangeBorrowed(lower, upper, tombstones)
}

// RangeBorrowedBetween is RangeBorrowed over the keys in [lo, hi) (hi "": no upper
// bound), so that ranges of a snapshot can be read in parallel (see SplitKeys).
func (r reader) RangeBorrowedBetween(lo, hi string, tombstones bool) iter.Seq2[fold.Entry, error] {
	upper := []byte{prefixEntry + 1}
	if hi != "" {
		upper = entryKey(hi)
	}
	return r.rangeBorrowed(entryKey(lo), upper, tombstones)
}

// SplitKeys returns up to n-1 increasing keys that cut the snapshot's entries into about
// n ranges, interpolated between its first and last key (read as numbers after their
// common prefix): even ranges for evenly spread keys such as sequence numbers, uneven but
// still correct bounds for any others. A snapshot with too few keys gets none. Errors:
// fold.ErrClosed, wrapped I/O errors.
func (s *Snapshot) SplitKeys(n int) ([]string, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	lower, upper := prefixBounds("")
	it, err := s.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, wrapErr("split keys", err)
	}
	defer it.Close()
	if !it.First() {
		return nil, wrapErrNil("split keys", it.Error())
	}
	lo := bytes.Clone(it.Key()[1:])
	if !it.Last() {
		return nil, wrapErrNil("split keys", it.Error())
	}
	hi := bytes.Clone(it.Key()[1:])
	p := 0
	for p < len(lo) && p < len(hi) && lo[p] == hi[p] {
		p++
	}
	num := func(k []byte) uint64 {
		var b [8]byte
		copy(b[:], k[min(p, len(k)):])
		return binary.BigEndian.Uint64(b[:])
	}
	a, b := num(lo), num(hi)
	if n < 2 || b-a < uint64(n) {
		return nil, nil
	}
	var out []string
	for j := 1; j < n; j++ {
		v := a + uint64(float64(b-a)*float64(j)/float64(n))
		k := binary.BigEndian.AppendUint64(append([]byte(nil), hi[:p]...), v)
		if key := string(bytes.TrimRight(k, "\x00")); key > string(lo) && (len(out) == 0 || key > out[len(out)-1]) {
			out = append(out, key)
		}
	}
	return out, nil
}

func (r reader) rangeBorrowed(lower, upper []byte, tombstones bool) iter.Seq2[fold.Entry, error] {
	return func(yield func(fold.Entry, error) bool) {
		if err := r.acquire(); err != nil {
			yield(fold.Entry{}, err)
			return
		}
		defer r.release()
		it, err := r.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			yield(fold.Entry{}, wrapErr("range", err))
			return
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			raw, err := it.ValueAndErr()
			if err != nil {
				yield(fold.Entry{}, wrapErr("range", err))
				return
			}
			k := it.Key()[1:]
			if err := checkValue(k, raw); err != nil {
				yield(fold.Entry{}, err)
				return
			}
			e := fold.Entry{Key: unsafe.String(unsafe.SliceData(k), len(k)), Revision: binary.BigEndian.Uint64(raw), Live: raw[8]&flagLive != 0}
			if !e.Live && !tombstones {
				continue
			}
			if e.Live {
				e.Value = raw[valueHeader:len(raw):len(raw)]
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := it.Error(); err != nil {
			yield(fold.Entry{}, wrapErr("range", err))
		}
	}
}
