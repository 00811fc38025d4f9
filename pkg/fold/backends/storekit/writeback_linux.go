package storekit

import (
	"os"

	"golang.org/x/sys/unix"
)

// StartWriteback asks the kernel to start writing back n bytes of f at off, without
// waiting. Writers of large files call it as they go, so that the disk works while they
// produce the rest and their final fsync waits only for the tail. It is a hint: where the
// file system does not support it, only the overlap is lost (the caller's fsync still
// makes the data durable and reports I/O errors).
func StartWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE) //nolint:gosec // a file descriptor fits an int
	})
}
