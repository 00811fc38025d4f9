package fold

import (
	"errors"
	"iter"
)

// MutOp is the kind of change a Mutation makes to the fold.
type MutOp uint8

const (
	// MutPut sets Key to Value at Revision (live).
	MutPut MutOp = iota + 1
	// MutDelete replaces Key with a tombstone at Revision (delete and purge markers both fold
	// to a tombstone). A tombstone is not served by Get or Range but counts for Holds/Count.
	MutDelete
	// MutForget removes Key entirely, live or tombstone.
	MutForget
)

// Mutation is one change applied to the fold.
type Mutation struct {
	Op       MutOp
	Key      string
	Value    []byte
	Revision uint64
	// Prior, when Known, is a promise of what the store holds for Key before this batch,
	// so that a store which reads the entry it replaces (to keep its counts exact) may skip
	// the read: the initial state sync of an empty store delivers every key once (Absent),
	// and a verified resume has just looked up the keys of its delta (VerifyResume). A
	// false promise corrupts the store's counts.
	Prior Prior
}

// Prior is what a store holds for a key, as far as its counts are concerned.
type Prior struct {
	Known    bool // the fields below are a promise (Mutation.Prior); false: unknown
	Exists   bool // live or a tombstone
	Live     bool
	ValueLen int // of a live entry
}

// PriorLooker is implemented by a Reader that can tell what it holds for a key (its Prior)
// more cheaply than Lookup, which reads the entry: a verified resume asks it instead. The
// answer must be exactly what Lookup would report (it becomes Mutation.Prior). Seeding
// checks NATS against a staged export through the export's index of its keys
// (pkg/export), so that the check does not read a table block per key of the delta.
type PriorLooker interface {
	LookupPrior(key string) (Prior, error)
}

// Absent is the Prior of a key the store does not hold.
var Absent = Prior{Known: true}

// PriorOf is the Prior of e, found (ok) or not: what a Lookup reports, as a Prior.
func PriorOf(e Entry, ok bool) Prior {
	if !ok {
		return Absent
	}
	return Prior{Known: true, Exists: true, Live: e.Live, ValueLen: len(e.Value)}
}

// State is what a store persists atomically with every batch.
type State struct {
	// Cursor is the stream sequence of the last update whose effect is in the fold (0: none).
	Cursor uint64
	// Resyncing is set while a full state-sync replay with diff is in progress: a fold
	// that opens with it set is not consistent and must run the resync again.
	Resyncing bool
}

// Entry is one key of the fold.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Live     bool // false: a tombstone
}

// Stats describes a store's contents.
type Stats struct {
	Live       uint64 // live keys
	Tombstones uint64
	// LiveBytes is the sum of len(key)+len(value) over live keys.
	LiveBytes uint64
	// DiskBytes is the size of the store on disk (0 for none).
	DiskBytes uint64
}

// Sentinel errors. Match with errors.Is.
var (
	// ErrCorrupted: the store's files fail verification (checksum, structure). The store
	// must be re-seeded; a corrupted store is never served.
	ErrCorrupted = errors.New("fold: store corrupted")
	// ErrClosed: the store was used after Close.
	ErrClosed = errors.New("fold: store closed")
	// ErrCursorRegression: Apply was asked to move the cursor backwards.
	ErrCursorRegression = errors.New("fold: cursor regression")
	// ErrUnknownBackend: the directory holds no store this build knows.
	ErrUnknownBackend = errors.New("fold: unknown backend")
)

// Reader is the read side of a fold, at one consistent point.
type Reader interface {
	// State returns the state the view is at.
	State() State
	// Get returns the live entry for key; ok is false when the key is absent or a tombstone.
	Get(key string) (e Entry, ok bool, err error)
	// Lookup returns the entry for key, live or tombstone.
	Lookup(key string) (e Entry, ok bool, err error)
	// Range yields entries whose key starts with prefix, in bytewise key order, streaming. With
	// tombstones false only live entries are yielded.
	Range(prefix string, tombstones bool) iter.Seq2[Entry, error]
	// Stats counts the view's contents. While State().Resyncing is set a store may report
	// approximate counts; they are exact again once the resync ends.
	Stats() (Stats, error)
}

// KeyRanger is implemented by readers that can list their entries without copying the
// values: a resync's diff and a verified resume need only keys, revisions and liveness.
// Both backends of this module implement it.
type KeyRanger interface {
	// RangeKeys is Range without values: every yielded Entry has a nil Value. Errors as
	// for Range.
	RangeKeys(prefix string, tombstones bool) iter.Seq2[Entry, error]
}

// RangeKeys lists r's entries under prefix without their values when r implements
// KeyRanger, else by Range (whose values the caller then ignores).
func RangeKeys(r Reader, prefix string, tombstones bool) iter.Seq2[Entry, error] {
	if kr, ok := r.(KeyRanger); ok {
		return kr.RangeKeys(prefix, tombstones)
	}
	return r.Range(prefix, tombstones)
}

// Store is a durable fold: entries plus the cursor they are current at.
//
// Invariants every implementation keeps (checked by foldtest):
//   - Apply writes the mutations and the state in one atomic, crash-safe step: after a crash
//     the store reopens at the state of some completed Apply, never between two.
//   - The fold is a pure function of the applied mutations.
//   - Corruption is reported as ErrCorrupted, never served.
//
// Reads may run concurrently with one Apply; Apply calls are serialised by the caller.
type Store interface {
	Reader
	// Apply writes muts and then st in one atomic step. It returns ErrCursorRegression if
	// st.Cursor is below the current cursor while st.Resyncing is false (a resync may restart
	// the cursor, e.g. after the bucket was recreated), ErrClosed after Close, or a wrapped
	// I/O error (after which the store's in-memory view is unchanged).
	Apply(muts []Mutation, st State) error
	// Snapshot returns a consistent point-in-time view that later Applies do not change.
	// The caller must Close it.
	Snapshot() (Snapshot, error)
	// Flush makes every Apply so far durable (for stores not syncing on each Apply).
	Flush() error
	// Close flushes and releases the store.
	Close() error
}

// Snapshot is a point-in-time view of a Store.
type Snapshot interface {
	Reader
	Close() error
}
