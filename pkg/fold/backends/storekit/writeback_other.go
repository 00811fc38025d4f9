//go:build !linux

package storekit

import "os"

// StartWriteback does nothing here: the caller's fsync writes the whole file back.
func StartWriteback(*os.File, int64, int64) {}
