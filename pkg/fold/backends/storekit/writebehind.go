package storekit

import (
	"fmt"
	"os"
)

// Write-behind thresholds.
const (
	// WritebackBytes is how much a WriteBehind lets be written between two starts of
	// writeback (StartWriteback).
	WritebackBytes = 8 << 20
	// SyncBehindBytes is how much it lets be written between two background fsyncs.
	SyncBehindBytes = 32 << 20
)

// WriteBehind makes a large file durable while it is written at increasing offsets, so
// that the fsync at its end waits only for the tail instead of the whole file:
//   - each WritebackBytes written, the kernel is asked to start writing them back
//     (StartWriteback, a hint that returns at once), so the disk works while the writer
//     produces the rest;
//   - each SyncBehindBytes, the file is fsynced from a goroutine (one at a time). Writing
//     back does not make data durable: a virtual disk's cache (or a drive's) is flushed
//     only by an fsync, which then pays for everything written since the previous one
//     (about a second per GB on the benchmark machine) however much was written back.
//
// The writer calls Wrote after each write and Sync (or Stop, when it gives up) at the end.
// A failed background fsync fails the file: Wrote, Stop and Sync report it from then on
// (a later fsync may succeed although the data was lost). Not safe for concurrent use.
type WriteBehind struct {
	f       *os.File
	off     int64 // end of what was written
	started int64 // end of what writeback was started for
	synced  int64 // off when the last background fsync started
	busy    bool  // a background fsync runs (it sends its result on done)
	done    chan error
	err     error // the first background fsync error
}

// NewWriteBehind returns a WriteBehind for f, whose writes start at off.
func NewWriteBehind(f *os.File, off int64) *WriteBehind {
	return &WriteBehind{f: f, off: off, started: off, synced: off, done: make(chan error, 1)}
}

// Wrote records n more bytes written at the end. It returns the error of an earlier
// background fsync, if any.
func (wb *WriteBehind) Wrote(n int) error {
	wb.off += int64(n)
	if wb.off-wb.started >= WritebackBytes {
		StartWriteback(wb.f, wb.started, wb.off-wb.started)
		wb.started = wb.off
	}
	wb.collect(false)
	if wb.err == nil && !wb.busy && wb.off-wb.synced >= SyncBehindBytes {
		wb.busy, wb.synced = true, wb.off
		go func() { wb.done <- wb.f.Sync() }()
	}
	return wb.err
}

// Written is the end of what was written; WritebackStarted the end of what writeback was
// started for; SyncedBehind where the last background fsync started.
func (wb *WriteBehind) Written() int64          { return wb.off }
func (wb *WriteBehind) WritebackStarted() int64 { return wb.started }
func (wb *WriteBehind) SyncedBehind() int64     { return wb.synced }

// collect takes the result of the background fsync when it has finished (or, with wait,
// once it finishes).
func (wb *WriteBehind) collect(wait bool) {
	if !wb.busy {
		return
	}
	var err error
	if wait {
		err = <-wb.done
	} else {
		select {
		case err = <-wb.done:
		default:
			return
		}
	}
	wb.busy = false
	if err != nil && wb.err == nil {
		wb.err = fmt.Errorf("fsync %s: %w", wb.f.Name(), err)
	}
}

// Stop waits for a background fsync (call it once the writing stopped, before the file is
// closed) and returns the first background fsync error.
func (wb *WriteBehind) Stop() error {
	wb.collect(true)
	return wb.err
}

// Sync waits for the background fsync, then makes everything written durable.
func (wb *WriteBehind) Sync() error {
	if err := wb.Stop(); err != nil {
		return err
	}
	if err := wb.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", wb.f.Name(), err)
	}
	return nil
}
