package export

import (
	"fmt"
	"os"

	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// writeBehindBytes is how much of an upload to a local file is written between two starts
// of its writeback.
const writeBehindBytes = 8 << 20

// writeBehind makes an upload to a local file (file://) durable while it is written: each
// writeBehindBytes written, the kernel is asked to start writing them back (Linux:
// sync_file_range, a hint that returns at once), so the disk works while the fold is still
// being read and encoded, and the fsync before the object is published (sync) waits only
// for the tail instead of the whole export.
type writeBehind struct {
	f            *os.File
	off, started int64
}

// wrote records n more bytes written at the end of the file.
func (wb *writeBehind) wrote(n int) error {
	wb.off += int64(n)
	if wb.off-wb.started >= writeBehindBytes {
		storekit.StartWriteback(wb.f, wb.started, wb.off-wb.started)
		wb.started = wb.off
	}
	return nil
}

// sync makes everything written durable.
func (wb *writeBehind) sync() error {
	if err := wb.f.Sync(); err != nil {
		return fmt.Errorf("sync export file: %w", err)
	}
	return nil
}
