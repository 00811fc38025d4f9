package export

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// swapDirs makes staging the directory final: one atomic rename when final does not exist,
// else an atomic exchange (renameat2 RENAME_EXCHANGE) after which the old fold, now at
// staging, is removed.
func swapDirs(staging, final string) error {
	err := unix.Renameat2(unix.AT_FDCWD, staging, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		if err := syncDir(filepath.Dir(final)); err != nil {
			return fmt.Errorf("sync %s: %w", filepath.Dir(final), err)
		}
		if err := os.RemoveAll(staging); err != nil {
			return fmt.Errorf("remove the replaced fold: %w", err)
		}
		return nil
	case errors.Is(err, unix.ENOENT):
		if _, serr := os.Stat(final); !errors.Is(serr, os.ErrNotExist) {
			return fmt.Errorf("swap %s into %s: %w", staging, final, err)
		}
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		// File system without RENAME_EXCHANGE: two renames.
		return swapByRenames(staging, final)
	default:
		return fmt.Errorf("swap %s into %s: %w", staging, final, err)
	}
	if err := os.Rename(staging, final); err != nil {
		return fmt.Errorf("move %s to %s: %w", staging, final, err)
	}
	return syncDir(filepath.Dir(final))
}
