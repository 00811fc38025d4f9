package pebble

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
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
	// CacheSize is the block cache size in bytes. Default 64 MiB. The cache holds
	// decompressed blocks, about keys x (key + value + 30 bytes) for the whole fold (~290
	// MB for 1M keys of 256-byte values). A Get that misses reads and decompresses a 4 KiB
	// table block (page cache permitting, no disk I/O), which roughly doubles its latency;
	// a cache that holds the fold serves every Get from memory after the first read of
	// each block since Open (BenchmarkGetP99 and BenchmarkGetP99Cached).
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

// setLevelOptions sets what the store writes its tables with, at every level (Open, and
// any writer of tables meant to be ingested, so that they match).
//
// Bloom filters let point reads (Get, and Apply's read of the entry it replaces) skip the
// tables that do not hold the key.
//
// Data blocks are 16 KiB (Pebble's default is 4 KiB). A scan (export, resync diff,
// compaction) loads, checksums, decompresses and caches a block at a time, and with 4 KiB
// blocks that per-block work was most of an export's CPU time: a 1M-key export ran at
// about 250 MB/s, and at 16 KiB it runs at 310-400 MB/s (32 KiB: 430-530); building the
// tables of an import gains as much. A point read that misses the cache loads the whole
// block, yet random Gets on a 1M-key fold with the default cache showed no difference
// between 4 and 16 KiB over three alternating runs (p50 10-15 us, p99 45-54 us both),
// while 32 KiB made them slower (p50 15-18 us, p99 52-60 us). Tables written with other
// block sizes stay readable.
//
// Compression is Pebble's "fastest" profile: MinLZ on amd64, Snappy on arm64 (where MinLZ
// has no assembly). A Get that misses the block cache decompresses a data block, and MinLZ
// does that about 3x faster than Snappy (CPU profile of BenchmarkGetP99 on amd64: 0.35 s
// against 1.1 s per million Gets), and the benchmark fold's tables are ~20% smaller.
// Tables written with Snappy stay readable; compactions rewrite them.
func setLevelOptions(levels []pebble.LevelOptions) {
	for i := range levels {
		levels[i].FilterPolicy = bloom.FilterPolicy(10)
		levels[i].FilterType = pebble.TableFilter
		levels[i].BlockSize = 16 << 10
		levels[i].Compression = func() *sstable.CompressionProfile { return sstable.FastestCompression }
	}
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
