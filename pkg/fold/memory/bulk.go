package memory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
	"unsafe"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// ErrNotEmpty: BulkLoad was called on a store that holds something.
var ErrNotEmpty = storekit.ErrNotEmpty

// bulkWriteBytes is the size of the log writes of BulkLoad.
const bulkWriteBytes = 1 << 20

// arenaBlock is the size of the blocks entryArena carves entries from.
const arenaBlock = 64 << 10

// entryArena lays out the entries of a bulk load as newEntry does (key and slot in one
// immutable buffer), but carves them from shared blocks of arenaBlock bytes: a load of a
// million entries makes a few thousand allocations instead of a million, which was most
// of its allocation and GC cost. The price: a block stays in memory while any of its
// entries is in the tree, so the entries an Apply replaces later are freed only with the
// last live entry of their block; arenaUse bounds that waste (Apply re-homes the rest once
// half the arena bytes are dead). Entries larger than a quarter block get an allocation of
// their own.
type entryArena struct {
	buf    []byte
	blocks [][]byte // every block allocated, for arenaUse
	bytes  int64    // bytes carved from the blocks
}

// newEntry carves the entry from the arena, or makes it an allocation of its own when it
// is large or a is nil.
func (a *entryArena) newEntry(key string, rev uint64, live bool, value []byte) (string, slot) {
	n := len(key) + slotHeader + len(value)
	if a == nil || !carved(n) {
		return newEntry(key, rev, live, value)
	}
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, arenaBlock)
		a.blocks = append(a.blocks, a.buf)
	}
	a.bytes += int64(n)
	start := len(a.buf)
	a.buf = append(a.buf, key...)
	a.buf = binary.BigEndian.AppendUint64(a.buf, rev)
	flags := byte(0)
	if live {
		flags = 1
	}
	a.buf = append(a.buf, flags)
	a.buf = append(a.buf, value...)
	b := a.buf[start:len(a.buf):len(a.buf)]
	k := len(key)
	return unsafe.String(&b[0], k), slot(unsafe.String(&b[k], len(b)-k))
}

// carved reports whether an arena carves an entry of n bytes (key and slot) from its
// blocks.
func carved(n int) bool { return n <= arenaBlock/4 }

// BulkLoad fills an empty store (State() zero, no entries) with entries, which must come
// in strictly increasing key order, and records st: the records are appended to the log
// in large sequential writes and built into a tree as they come, and st's CURSOR
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
	var arena entryArena
	c, end, err := s.bulkWrite(start, entries, st, &arena)
	if err != nil {
		// Nothing was published (s.w is still empty): drop the records written.
		if terr := s.f.Truncate(start); terr != nil {
			s.broken = fmt.Errorf("bulk load: %w; truncate back: %w", err, terr)
		}
		return err
	}
	s.counts, s.st = c, st
	s.arena.add(arena.blocks, arena.bytes)
	s.size.Store(end)
	s.publish()
	return nil
}

// bulkWrite appends the records of entries and a CURSOR record for st at off, and builds
// the tree of the entries; it returns the counts and the log's new end, and sets s.w to
// the tree (only on success). The log writes and the tree's build run in goroutines of
// their own, so that the disk (which throttles a writer of this much data), building the
// tree, and decoding and encoding the records overlap.
func (s *Store) bulkWrite(off int64, entries iter.Seq2[fold.Entry, error], st fold.State, arena *entryArena) (counts, int64, error) {
	lw := newLogWriter(s, off)
	tf := newTreeFeeder()
	c, err := s.bulkRecords(lw, tf, entries, arena)
	t := tf.close()
	if err == nil {
		lw.buf = appendCursor(lw.buf, st)
		lw.send()
	}
	end, werr := lw.close()
	if err == nil {
		err = werr
	}
	if err == nil {
		if serr := s.f.Sync(); serr != nil {
			err = fmt.Errorf("bulk load: sync log: %w", serr)
		}
	}
	if err != nil {
		return counts{}, 0, err
	}
	s.w = t
	return c, end, nil
}

func (s *Store) bulkRecords(lw *logWriter, tf *treeFeeder, entries iter.Seq2[fold.Entry, error], arena *entryArena) (counts, error) {
	var c counts
	var last []byte
	n := 0
	for e, err := range entries {
		if err != nil {
			return counts{}, err
		}
		if err := storekit.CheckBulkEntry(e, last, n); err != nil {
			return counts{}, fmt.Errorf("bulk load: %w", err)
		}
		if e.Live {
			lw.buf = appendPut(lw.buf, e.Key, e.Value, e.Revision)
		} else {
			lw.buf = appendDelete(lw.buf, e.Key, e.Revision, false)
		}
		k, sl := arena.newEntry(e.Key, e.Revision, e.Live, e.Value)
		tf.add(k, sl)
		c.add(k, sl)
		last = append(last[:0], e.Key...)
		n++
		if len(lw.buf) >= bulkWriteBytes && !lw.send() {
			break // a write failed: close reports it
		}
	}
	return c, nil
}

// treeBatch is how many entries treeFeeder hands over at once.
const treeBatch = 1024

type treeItem struct {
	k string
	s slot
}

// treeFeeder builds a tree from a goroutine out of the entries added, in strictly
// increasing key order: bottom up, with no search per key (newTreeBuilder).
type treeFeeder struct {
	batch []treeItem
	full  chan []treeItem
	free  chan []treeItem
	done  chan struct{}
	t     *tree // the built tree, once done is closed
}

func newTreeFeeder() *treeFeeder {
	tf := &treeFeeder{full: make(chan []treeItem, 4), free: make(chan []treeItem, 6), done: make(chan struct{})}
	tf.batch = make([]treeItem, 0, treeBatch)
	for range 5 {
		tf.free <- make([]treeItem, 0, treeBatch)
	}
	go func() {
		defer close(tf.done)
		b := newTreeBuilder()
		for batch := range tf.full {
			for _, it := range batch {
				b.Add(it.k, it.s)
			}
			clear(batch)
			tf.free <- batch[:0]
		}
		tf.t = b.Build()
	}()
	return tf
}

func (tf *treeFeeder) add(k string, s slot) {
	tf.batch = append(tf.batch, treeItem{k, s})
	if len(tf.batch) == treeBatch {
		tf.full <- tf.batch
		tf.batch = <-tf.free
	}
}

// close adds what is left and returns the tree of every entry added.
func (tf *treeFeeder) close() *tree {
	if len(tf.batch) > 0 {
		tf.full <- tf.batch
	}
	close(tf.full)
	<-tf.done
	return tf.t
}

// logWriter writes buffers at increasing offsets of the log from a goroutine, made
// durable behind the writes (storekit.WriteBehind); a failed write or fsync fails the
// load (close returns it).
type logWriter struct {
	buf  []byte
	full chan []byte
	free chan []byte
	done chan struct{}
	f    interface {
		WriteAt(b []byte, off int64) (int, error)
	}
	off    int64 // written by the goroutine; read after done
	err    error
	failed atomic.Bool
}

func newLogWriter(s *Store, off int64) *logWriter {
	lw := &logWriter{full: make(chan []byte, 2), free: make(chan []byte, 3), done: make(chan struct{}), f: s.f, off: off}
	for range 2 {
		lw.free <- make([]byte, 0, bulkWriteBytes+64<<10)
	}
	lw.buf = make([]byte, 0, bulkWriteBytes+64<<10)
	go func() {
		defer close(lw.done)
		// The log is made durable as it is written (writeback, background fsyncs), so the
		// fsync at the end of the load waits only for the tail.
		wb := storekit.NewWriteBehind(s.f, off)
		for b := range lw.full {
			if lw.err == nil {
				if _, err := lw.f.WriteAt(b, lw.off); err != nil {
					lw.fail("write", err)
				} else {
					lw.off += int64(len(b))
					lw.fail("sync", wb.Wrote(len(b)))
				}
			}
			lw.free <- b[:0]
		}
		lw.fail("sync", wb.Stop())
	}()
	return lw
}

// fail records the first error of the log's writes and fsyncs (what failed: "write",
// "sync"; nil err: nothing failed).
func (lw *logWriter) fail(what string, err error) {
	if err != nil && lw.err == nil {
		lw.err = fmt.Errorf("bulk load: %s log: %w", what, err)
		lw.failed.Store(true)
	}
}

// send hands buf to the goroutine and takes a free buffer; false once a write failed.
func (lw *logWriter) send() bool {
	lw.full <- lw.buf
	lw.buf = <-lw.free
	return !lw.failed.Load()
}

// close waits for the writes and returns the log's end and the first write error.
func (lw *logWriter) close() (int64, error) {
	close(lw.full)
	<-lw.done
	return lw.off, lw.err
}

// Relocate runs move, which renames the store's directory to dir, while the store stays
// open (its log stays open: the memory store reads nothing else from the directory after
// Open), so a staged store can become the fold without a close and a replay of its whole
// log. Apply and compaction wait meanwhile. Errors: fold.ErrClosed, a compaction running
// (it writes in the directory; nothing moved), move's error (unwrapped; nothing moved).
func (s *Store) Relocate(dir string, move func() error) error {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.compacting {
		return errors.New("relocate memory fold store: a compaction is running")
	}
	if err := move(); err != nil {
		return err
	}
	s.dir = dir
	return nil
}
