//go:build !linux

package export

func swapDirs(staging, final string) error { return swapByRenames(staging, final) }
