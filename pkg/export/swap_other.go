//go:build !linux

package export

import "errors"

func swapDirs(staging, final string) (*swap, error) { return swapByRenames(staging, final) }

func exchangeDirs(_, _ string) error {
	return errors.New("no atomic directory exchange on this platform")
}
