package pebble

import (
	"fmt"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A write to Pebble's WAL that fails is fatal in Pebble: it ends the process (its commit
// pipeline cannot recover). So the store stops writing before its filesystem is full:
// Open and Apply refuse while less than Options.MinFreeBytes is free, with an error that
// wraps syscall.ENOSPC and names the figures. The caller (the agent) reports it and
// retries; nothing is written, so nothing is lost, and the fold goes on once space returns.

// defaultReserveExtra is added to the memtable size for the default reserve: room for one
// memtable flush plus WAL and manifest growth.
const defaultReserveExtra = 8 << 20

// checkSpace returns nil when the reserve is off, the FS is not the OS's, or dir's
// filesystem has at least minFree bytes free.
func checkSpace(fs vfs.FS, dir string, minFree int64) error {
	if minFree <= 0 || fs != vfs.Default {
		return nil
	}
	free, ok := freeBytes(dir)
	if !ok || free >= minFree {
		return nil
	}
	return fmt.Errorf("%w: %d bytes free on the filesystem of %s, below the %d the pebble store keeps free (a full disk would make Pebble end the process); free some space", syscall.ENOSPC, free, dir, minFree)
}
