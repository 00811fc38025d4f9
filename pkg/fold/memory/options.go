package memory

import "log/slog"

// SyncMode says when Apply makes a batch durable.
type SyncMode uint8

const (
	// SyncEveryApply fsyncs the log before Apply returns (the default): a batch Apply
	// acknowledged survives power loss.
	SyncEveryApply SyncMode = iota
	// SyncNone leaves durability to the OS (and Flush/Close). A crash may lose the last
	// batches, never tear one: the cursor always matches the data.
	SyncNone
)

// Options configures a memory Store. The zero value is valid.
type Options struct {
	// Sync is when Apply fsyncs the log. Default SyncEveryApply.
	Sync SyncMode
	// CompactMinBytes: the log is not compacted while smaller than this. Default 16 MiB.
	CompactMinBytes int64
	// CompactRatio: the log is compacted once it is this many times the size a freshly
	// compacted log of the current contents would have. Default 2.
	CompactRatio float64
	// DisableAutoCompact turns off background compaction (Compact still works).
	DisableAutoCompact bool
	// Logger reports background compaction failures. Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultCompactMinBytes = 16 << 20
	defaultCompactRatio    = 2
)

func (o Options) withDefaults() Options {
	if o.CompactMinBytes <= 0 {
		o.CompactMinBytes = defaultCompactMinBytes
	}
	if o.CompactRatio < 1 {
		o.CompactRatio = defaultCompactRatio
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
