package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// purgeMain runs `manager purge-fold-data --path DIR`: it removes DIR (a fold directory)
// and then its parent when that is empty. Exit codes: 0 removed or already absent,
// 1 removal failed, 2 bad command line.
func purgeMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("purge-fold-data", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("path", "", "fold directory to remove (absolute, at least two levels below /)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "purge-fold-data: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := purge(*dir); err != nil {
		fmt.Fprintf(stderr, "purge-fold-data: %v\n", err)
		var bad *badPathError
		if errors.As(err, &bad) {
			return 2
		}
		return 1
	}
	fmt.Fprintf(stderr, "purge-fold-data: %s removed\n", *dir)
	return 0
}

type badPathError struct{ msg string }

func (e *badPathError) Error() string { return e.msg }

// purge removes dir and, if it is then empty, its parent. It refuses anything but a clean
// absolute path at least two levels deep, so a bad argument cannot wipe a root.
func purge(dir string) error {
	if dir == "" {
		return &badPathError{"--path is required"}
	}
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return &badPathError{fmt.Sprintf("--path %q: must be a clean absolute path", dir)}
	}
	parent := filepath.Dir(dir)
	if parent == "/" {
		return &badPathError{fmt.Sprintf("--path %q: refusing a top-level directory", dir)}
	}
	// RemoveAll does not follow a symlink at dir: it removes the link itself.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	if err := os.Remove(parent); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		// The parent is the mount point in a cleanup Job: busy, or on a read-only root file
		// system (EROFS, as the Job runs); the node keeps the empty namespace directory.
		if !errors.Is(err, syscall.EBUSY) && !errors.Is(err, syscall.EROFS) {
			return fmt.Errorf("remove empty %s: %w", parent, err)
		}
	}
	return nil
}
