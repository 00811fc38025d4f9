package export

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// swapDirs makes staging the directory final: one atomic rename when final does not exist,
// else an atomic exchange (renameat2 RENAME_EXCHANGE), after which the old fold is at
// staging until the swap is finished (or undone). On error nothing changed.
func swapDirs(staging, final string) (*swap, error) {
	err := exchangeDirs(staging, final)
	switch {
	case err == nil:
		return &swap{staging: staging, final: final, aside: staging, exchanged: true}, nil
	case errors.Is(err, unix.ENOENT):
		if _, serr := os.Stat(final); !errors.Is(serr, os.ErrNotExist) {
			return nil, fmt.Errorf("swap %s into %s: %w", staging, final, err)
		}
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		// File system without RENAME_EXCHANGE: two renames.
		return swapByRenames(staging, final)
	default:
		return nil, fmt.Errorf("swap %s into %s: %w", staging, final, err)
	}
	if err := os.Rename(staging, final); err != nil {
		return nil, fmt.Errorf("move %s to %s: %w", staging, final, err)
	}
	return &swap{staging: staging, final: final}, nil
}

func exchangeDirs(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}
