package memory

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback starts writing back n bytes of f at off without waiting for them. It is
// a hint: where the file system does not support it (an error), only the overlap is lost,
// since BulkLoad's fsync makes the log durable and reports I/O errors.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE) //nolint:gosec // a file descriptor fits an int
	})
}
