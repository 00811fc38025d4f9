package kv

import (
	"errors"
	"iter"
	"time"
)

// Op is the operation an update or entry carries.
type Op uint8

const (
	// OpPut is a value write.
	OpPut Op = iota + 1
	// OpDelete is a delete marker (KV-Operation: DEL, or a server marker with reason Remove).
	OpDelete
	// OpPurge is a purge marker (KV-Operation: PURGE, or a server marker with reason MaxAge/Purge).
	OpPurge
	// OpForget is a control update produced by resume verification: the bucket no longer
	// holds any message for Key (its delete/purge marker was removed from the stream), so a
	// fold should drop the tombstone it keeps for Key. It never names a live key.
	OpForget
	// OpSynced is a control update without a key: the fold that applied every update up to
	// and including this one equals the bucket's state (within scope) at Revision. It ends
	// the initial state sync, and ends a verified resume.
	OpSynced
)

// String returns the lower-case name of the operation.
func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpPurge:
		return "purge"
	case OpForget:
		return "forget"
	case OpSynced:
		return "synced"
	}
	return "unknown"
}

// Entry is one key's value (or tombstone) as read from the bucket.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64 // stream sequence of the message
	Op       Op     // OpPut, OpDelete or OpPurge
	Created  time.Time
}

// Update is one event delivered by a Watcher.
type Update struct {
	Op       Op
	Key      string // empty for OpSynced
	Value    []byte // only for OpPut
	Revision uint64 // stream sequence; for OpForget and OpSynced the position it takes effect at
	Created  time.Time
	// Pending is the number of messages still pending for the consumer after this one, as
	// reported by the server with the message: the lag gauge.
	Pending uint64
}

// Sentinel errors. Match with errors.Is.
var (
	ErrBucketNotFound    = errors.New("kv: bucket not found")
	ErrKeyNotFound       = errors.New("kv: key not found")
	ErrInvalidKey        = errors.New("kv: invalid key")
	ErrInvalidScope      = errors.New("kv: invalid scope")
	ErrAlreadyExists     = errors.New("kv: key already exists")
	ErrRevisionMismatch  = errors.New("kv: revision mismatch")
	ErrCursorExpired     = errors.New("kv: cursor expired: NATS no longer holds every update after the cursor")
	ErrNotConnected      = errors.New("kv: not connected")
	ErrWatchInterrupted  = errors.New("kv: watch interrupted")
	ErrInvalidConfig     = errors.New("kv: invalid configuration")
	ErrUnsupported       = errors.New("kv: not supported by this server")
	ErrPermissionDenied  = errors.New("kv: permission denied")
	ErrBucketUnavailable = errors.New("kv: bucket unavailable")
)

// KeyState is one key a fold holds, live or as a tombstone.
type KeyState struct {
	Key  string
	Live bool
}

// FoldState is the view of the caller's fold that a verified resume needs. It must reflect
// the fold exactly at the cursor passed to Watch, and keep reflecting it for keys the watcher
// has not yet delivered (the caller applies only what the watcher delivered).
type FoldState interface {
	// Count returns how many keys within the watch scope the fold holds, live or as a
	// delete/purge tombstone.
	Count() (uint64, error)
	// Holds reports whether the fold holds key, live or as a tombstone.
	Holds(key string) (bool, error)
	// Keys yields every key within the watch scope that the fold holds, in any order.
	Keys() iter.Seq2[KeyState, error]
}
