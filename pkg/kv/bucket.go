package kv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Storage is where a bucket keeps its data.
type Storage uint8

const (
	// StorageFile keeps data on disk (the default).
	StorageFile Storage = iota
	// StorageMemory keeps data in memory only.
	StorageMemory
)

// String returns "file" or "memory".
func (s Storage) String() string {
	if s == StorageMemory {
		return "memory"
	}
	return "file"
}

// BucketConfig configures a bucket. Zero values take the server defaults noted per field.
type BucketConfig struct {
	Name        string
	Description string
	// MaxBytes bounds the bucket's size; writes beyond it fail with ErrBucketFull (KV
	// buckets discard new messages). 0: unlimited.
	MaxBytes int64
	// MaxValueSize bounds one value. 0: the server's max payload.
	MaxValueSize int32
	// MaxAge evicts messages older than this. 0: keep forever.
	MaxAge time.Duration
	// History is how many revisions are kept per key, 1..64 (0 means 1).
	History uint8
	// Replicas is the stream replication factor (0 means 1).
	Replicas int
	Storage  Storage
	// LimitMarkerTTL makes the server place a purge marker (kept this long) when a key is
	// removed by MaxAge or a per-message TTL, so watchers see the removal. Requires server
	// >= 2.11 and implies AllowTTL.
	LimitMarkerTTL time.Duration
	// AllowTTL permits per-message TTLs (server >= 2.11).
	AllowTTL bool
}

func (c BucketConfig) validate() error {
	if err := validBucketName(c.Name); err != nil {
		return err
	}
	switch {
	case c.History > jetstream.KeyValueMaxHistory:
		return fmt.Errorf("%w: history %d exceeds %d", ErrInvalidConfig, c.History, jetstream.KeyValueMaxHistory)
	case c.MaxBytes < 0:
		return fmt.Errorf("%w: max bytes %d is negative", ErrInvalidConfig, c.MaxBytes)
	case c.MaxAge < 0:
		return fmt.Errorf("%w: max age %s is negative", ErrInvalidConfig, c.MaxAge)
	case c.Replicas < 0 || c.Replicas > 5:
		return fmt.Errorf("%w: replicas %d not in 1..5", ErrInvalidConfig, c.Replicas)
	case c.LimitMarkerTTL < 0:
		return fmt.Errorf("%w: limit marker ttl %s is negative", ErrInvalidConfig, c.LimitMarkerTTL)
	case c.LimitMarkerTTL > 0 && c.LimitMarkerTTL < time.Second:
		return fmt.Errorf("%w: limit marker ttl %s is below the server minimum of 1s", ErrInvalidConfig, c.LimitMarkerTTL)
	}
	return nil
}

func (c BucketConfig) kvConfig() jetstream.KeyValueConfig {
	st := jetstream.FileStorage
	if c.Storage == StorageMemory {
		st = jetstream.MemoryStorage
	}
	return jetstream.KeyValueConfig{
		Bucket:         c.Name,
		Description:    c.Description,
		MaxBytes:       c.MaxBytes,
		MaxValueSize:   c.MaxValueSize,
		TTL:            c.MaxAge,
		History:        c.History,
		Replicas:       c.Replicas,
		Storage:        st,
		LimitMarkerTTL: c.LimitMarkerTTL,
	}
}

// Bucket is a handle on one KV bucket. It is safe for concurrent use.
type Bucket struct {
	conn   *Conn
	name   string
	kv     jetstream.KeyValue
	stream jetstream.Stream
	pre    string // "$KV.<name>."
}

// Bucket opens an existing bucket. It returns ErrBucketNotFound when there is none.
func (c *Conn) Bucket(ctx context.Context, name string) (*Bucket, error) {
	if err := validBucketName(name); err != nil {
		return nil, err
	}
	kv, err := c.js.KeyValue(ctx, name)
	if err != nil {
		return nil, mapErr(fmt.Sprintf("open bucket %q", name), err)
	}
	return c.bucket(ctx, name, kv)
}

func (c *Conn) bucket(ctx context.Context, name string, kv jetstream.KeyValue) (*Bucket, error) {
	st, err := c.js.Stream(ctx, streamName(name))
	if err != nil {
		return nil, mapErr(fmt.Sprintf("open stream of bucket %q", name), err)
	}
	return &Bucket{conn: c, name: name, kv: kv, stream: st, pre: subjectPrefix(name)}, nil
}

// CreateBucket creates a bucket. Creating one that exists with the same configuration
// succeeds; with a different configuration it fails with ErrBucketExists.
func (c *Conn) CreateBucket(ctx context.Context, cfg BucketConfig) (*Bucket, error) {
	return c.createBucket(ctx, cfg, false)
}

// CreateOrUpdateBucket creates a bucket or updates an existing one to cfg.
func (c *Conn) CreateOrUpdateBucket(ctx context.Context, cfg BucketConfig) (*Bucket, error) {
	return c.createBucket(ctx, cfg, true)
}

func (c *Conn) createBucket(ctx context.Context, cfg BucketConfig, update bool) (*Bucket, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	op := fmt.Sprintf("create bucket %q", cfg.Name)
	var kv jetstream.KeyValue
	var err error
	if update {
		kv, err = c.js.CreateOrUpdateKeyValue(ctx, cfg.kvConfig())
	} else {
		kv, err = c.js.CreateKeyValue(ctx, cfg.kvConfig())
	}
	if errors.Is(err, jetstream.ErrBucketExists) {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrBucketExists, err)
	}
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		return nil, fmt.Errorf("%s: limit markers: %w: %w", op, ErrUnsupported, err)
	}
	if err != nil {
		return nil, mapErr(op, err)
	}
	b, err := c.bucket(ctx, cfg.Name, kv)
	if err != nil {
		return nil, err
	}
	if cfg.AllowTTL && cfg.LimitMarkerTTL == 0 {
		info, err := b.stream.Info(ctx)
		if err != nil {
			return nil, mapErr(op, err)
		}
		if !info.Config.AllowMsgTTL {
			scfg := info.Config
			scfg.AllowMsgTTL = true
			if _, err := c.js.UpdateStream(ctx, scfg); err != nil {
				return nil, mapErr(op+": allow message ttl", err)
			}
		}
	}
	return b, nil
}

// DeleteBucket deletes a bucket and all its data.
func (c *Conn) DeleteBucket(ctx context.Context, name string) error {
	if err := validBucketName(name); err != nil {
		return err
	}
	return mapErr(fmt.Sprintf("delete bucket %q", name), c.js.DeleteKeyValue(ctx, name))
}

// Name returns the bucket's name.
func (b *Bucket) Name() string { return b.name }

// Stream returns the name of the bucket's stream ("KV_<name>").
func (b *Bucket) Stream() string { return streamName(b.name) }

// BucketStatus is the state of a bucket's stream and its configuration.
type BucketStatus struct {
	Bucket      string
	FirstSeq    uint64 // first sequence still in the stream
	LastSeq     uint64 // last sequence written (the bucket's revision)
	Msgs        uint64 // messages held (all revisions and markers)
	Bytes       uint64
	NumSubjects uint64 // keys with at least one message (live keys and markers)
	NumDeleted  int    // interior gaps (removed messages between first and last)
	Created     time.Time
	Config      BucketConfig
	// DiscardNew is true for standard KV buckets: writes fail when MaxBytes is reached.
	DiscardNew bool
}

// Status returns the bucket's stream state and configuration.
func (b *Bucket) Status(ctx context.Context) (BucketStatus, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return BucketStatus{}, mapErr(fmt.Sprintf("status of bucket %q", b.name), err)
	}
	return statusFromInfo(b.name, info), nil
}

func statusFromInfo(name string, info *jetstream.StreamInfo) BucketStatus {
	cfg := info.Config
	st := StorageFile
	if cfg.Storage == jetstream.MemoryStorage {
		st = StorageMemory
	}
	maxBytes := cfg.MaxBytes
	if maxBytes < 0 {
		maxBytes = 0
	}
	maxVal := cfg.MaxMsgSize
	if maxVal < 0 {
		maxVal = 0
	}
	return BucketStatus{
		Bucket:      name,
		FirstSeq:    info.State.FirstSeq,
		LastSeq:     info.State.LastSeq,
		Msgs:        info.State.Msgs,
		Bytes:       info.State.Bytes,
		NumSubjects: info.State.NumSubjects,
		NumDeleted:  info.State.NumDeleted,
		Created:     info.Created,
		DiscardNew:  cfg.Discard == jetstream.DiscardNew,
		Config: BucketConfig{
			Name:           name,
			Description:    cfg.Description,
			MaxBytes:       maxBytes,
			MaxValueSize:   maxVal,
			MaxAge:         cfg.MaxAge,
			History:        uint8(cfg.MaxMsgsPerSubject),
			Replicas:       cfg.Replicas,
			Storage:        st,
			LimitMarkerTTL: cfg.SubjectDeleteMarkerTTL,
			AllowTTL:       cfg.AllowMsgTTL,
		},
	}
}

// PurgeDeletes removes delete and purge markers older than olderThan, with the earlier
// revisions of those keys; a negative olderThan removes all markers, 0 uses the nats.go
// default (30 minutes). Folds resuming across it see the markers' keys vanish: a
// tombstone they hold is then forgotten (OpForget), a live key they hold means their
// cursor expired.
func (b *Bucket) PurgeDeletes(ctx context.Context, olderThan time.Duration) error {
	return mapErr(fmt.Sprintf("purge deletes in bucket %q", b.name),
		b.kv.PurgeDeletes(ctx, jetstream.DeleteMarkersOlderThan(olderThan)))
}
