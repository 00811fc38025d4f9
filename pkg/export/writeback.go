package export

import (
	"fmt"
	"os"

	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// writeBehindBytes is how much of an upload to a local file is written between two starts
// of its writeback.
const writeBehindBytes = 8 << 20

// syncBehindBytes is how much of an upload to a local file is written between two fsyncs
// run in the background while the upload goes on.
const syncBehindBytes = 32 << 20

// writeBehind makes an upload to a local file (file://) durable while it is written, so
// that the fsync before the object is published (sync) waits only for the tail instead of
// the whole export:
//   - each writeBehindBytes written, the kernel is asked to start writing them back
//     (Linux: sync_file_range, a hint that returns at once), so the disk works while the
//     fold is still being read and encoded;
//   - each syncBehindBytes, the file is fsynced from a goroutine (one at a time). Writing
//     back does not make data durable: a virtual disk's cache (or a drive's) is flushed
//     only by an fsync, which then pays for everything written since the last one, about
//     a second per GB on the benchmark machine whatever was written back before.
type writeBehind struct {
	f            *os.File
	off, started int64
	synced       int64      // off when the last background fsync started
	busy         bool       // a background fsync runs (it sends its result on done)
	done         chan error // created with the first background fsync
	err          error      // the first background fsync error
}

// wrote records n more bytes written at the end of the file. It returns the error of an
// earlier background fsync, if any.
func (wb *writeBehind) wrote(n int) error {
	wb.off += int64(n)
	if wb.off-wb.started >= writeBehindBytes {
		storekit.StartWriteback(wb.f, wb.started, wb.off-wb.started)
		wb.started = wb.off
	}
	wb.collect(false)
	if wb.err == nil && !wb.busy && wb.off-wb.synced >= syncBehindBytes {
		wb.startSync()
	}
	return wb.err
}

func (wb *writeBehind) startSync() {
	if wb.done == nil {
		wb.done = make(chan error, 1)
	}
	wb.busy, wb.synced = true, wb.off
	go func() { wb.done <- wb.f.Sync() }()
}

// collect takes the result of the background fsync when it has finished (or, with wait,
// once it finishes).
func (wb *writeBehind) collect(wait bool) {
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
		wb.err = fmt.Errorf("sync export file: %w", err)
	}
}

// stop waits for a background fsync (call it once the writing stopped, before the file is
// closed or published) and returns the first background fsync error.
func (wb *writeBehind) stop() error {
	wb.collect(true)
	return wb.err
}

// sync waits for the background fsync, then makes everything written durable.
func (wb *writeBehind) sync() error {
	if err := wb.stop(); err != nil {
		return err
	}
	if err := wb.f.Sync(); err != nil {
		return fmt.Errorf("sync export file: %w", err)
	}
	return nil
}
