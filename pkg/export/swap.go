package export

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// swapByRenames moves final aside, staging into place, and removes the old fold. A crash
// between the two renames leaves no fold in final (the old one is at final+".old"): the
// next start seeds or resyncs, it never serves a mix.
func swapByRenames(staging, final string) error {
	old := final + ".old"
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("clear %s: %w", old, err)
	}
	moved := true
	if err := os.Rename(final, old); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("move the old fold aside: %w", err)
		}
		moved = false
	}
	if err := os.Rename(staging, final); err != nil {
		return fmt.Errorf("move %s to %s: %w", staging, final, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Dir(final), err)
	}
	if moved {
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("remove the replaced fold: %w", err)
		}
	}
	return nil
}
