package export

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// swap is a staging directory moved into place as final, undoable until finished.
type swap struct {
	staging, final string
	// aside is where the replaced fold now is ("" when final did not exist); with
	// exchanged it is staging (RENAME_EXCHANGE), else final+".old".
	aside     string
	exchanged bool
}

// swapByRenames moves final aside, then staging into place. A crash between the two renames
// leaves no fold in final (the old one is at final+".old"): the next start seeds or
// resyncs, it never serves a mix. On error the old fold is back in final.
func swapByRenames(staging, final string) (*swap, error) {
	old := final + ".old"
	if err := os.RemoveAll(old); err != nil {
		return nil, fmt.Errorf("clear %s: %w", old, err)
	}
	sw := &swap{staging: staging, final: final, aside: old}
	if err := os.Rename(final, old); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("move the old fold aside: %w", err)
		}
		sw.aside = ""
	}
	if err := os.Rename(staging, final); err != nil {
		err = fmt.Errorf("move %s to %s: %w", staging, final, err)
		if sw.aside != "" {
			if rerr := os.Rename(old, final); rerr != nil {
				err = errors.Join(err, fmt.Errorf("move the old fold back: %w", rerr))
			}
		}
		return nil, err
	}
	return sw, nil
}

// undo puts the replaced fold back in final and the new one back at staging.
func (sw *swap) undo() error {
	if sw.exchanged {
		if err := exchangeDirs(sw.staging, sw.final); err != nil {
			return fmt.Errorf("swap the old fold back: %w", err)
		}
		return syncDir(filepath.Dir(sw.final))
	}
	if err := os.Rename(sw.final, sw.staging); err != nil {
		return fmt.Errorf("move the new fold back: %w", err)
	}
	if sw.aside != "" {
		if err := os.Rename(sw.aside, sw.final); err != nil {
			return fmt.Errorf("move the old fold back: %w", err)
		}
	}
	return syncDir(filepath.Dir(sw.final))
}

// finish makes the swap durable and removes the replaced fold.
func (sw *swap) finish() error {
	if err := syncDir(filepath.Dir(sw.final)); err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Dir(sw.final), err)
	}
	if sw.aside != "" {
		if err := os.RemoveAll(sw.aside); err != nil {
			return fmt.Errorf("remove the replaced fold: %w", err)
		}
	}
	return nil
}
