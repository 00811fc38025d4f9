package pebble

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// SyncMode says when Apply makes a batch durable.
type SyncMode uint8

const (
	// SyncEveryApply fsyncs the write-ahead log before Apply returns (the default).
	SyncEveryApply SyncMode = iota
	// SyncNone leaves durability to Pebble's background WAL writes, Flush and Close. A
	// crash may lose the last batches, never tear one: the cursor is in the same batch as
	// its data.
	SyncNone
)

// Options configures a Pebble Store. The zero value is valid.
type Options struct {
	// Sync is when Apply fsyncs. Default SyncEveryApply.
	Sync SyncMode
	// CacheSize is the block cache size in bytes. Default 64 MiB.
	CacheSize int64
	// MemTableSize is the size of each memtable in bytes. Default 32 MiB.
	MemTableSize uint64
	// FS is the filesystem. Default vfs.Default (the OS); tests use vfs.NewCrashableMem().
	FS vfs.FS
	// MinFreeBytes: Open and Apply refuse, with an error wrapping syscall.ENOSPC, while the
	// store's filesystem has less free space (Pebble ends the process when a WAL write
	// fails). Default MemTableSize + 8 MiB; negative turns the check off. Only for the OS
	// filesystem (FS vfs.Default), on Linux.
	MinFreeBytes int64
	// Logger receives Pebble's logs. Default: informational messages are dropped, errors go
	// to pebble.DefaultLogger.
	Logger pebble.Logger
}

const (
	defaultCacheSize    = 64 << 20
	defaultMemTableSize = 32 << 20
)

func (o Options) withDefaults() Options {
	if o.CacheSize <= 0 {
		o.CacheSize = defaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = defaultMemTableSize
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = int64(o.MemTableSize) + defaultReserveExtra //nolint:gosec // memtable sizes are far below 2^63
	}
	if o.Logger == nil {
		o.Logger = quietLogger{}
	}
	return o
}

// quietLogger drops Pebble's informational logs.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Errorf(format string, args ...interface{}) {
	pebble.DefaultLogger.Errorf(format, args...)
}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	pebble.DefaultLogger.Fatalf(format, args...)
}
