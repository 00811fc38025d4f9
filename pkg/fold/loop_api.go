package fold

import (
	"context"
	"log/slog"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// EventKind names something notable the applied-watch loop did.
type EventKind string

const (
	EventCursorExpired EventKind = "CursorExpired" // resume found NATS no longer holds the delta
	EventResyncStarted EventKind = "ResyncStarted" // full state-sync replay with diff began
	EventResyncDone    EventKind = "ResyncDone"    // the diff ran; Deleted local keys removed
	EventSeeded        EventKind = "Seeded"        // the store was replaced from a seed (export)
	EventWatchError    EventKind = "WatchError"    // the watch failed; the loop retries with backoff
	EventSynced        EventKind = "Synced"        // the fold equals the bucket at Progress.State.Cursor
)

// Event is reported to Observer.Event.
type Event struct {
	Kind    EventKind
	Err     error  // for WatchError, CursorExpired
	Deleted uint64 // for ResyncDone: local keys the diff removed
	Source  string // for Seeded: where the seed came from
}

// Progress is reported after every applied batch.
type Progress struct {
	State State
	// Pending is the number of messages NATS still has for the consumer after the batch.
	Pending uint64
	// OldestUnapplied is the creation time of the oldest update received but not yet applied
	// when the batch was applied (zero when none).
	OldestUnapplied time.Time
	// Synced is true once the fold has been verified equal to the bucket at some cursor
	// in this run (initial state sync done, or resume verified).
	Synced bool
}

// Observer receives the loop's progress. Calls are made one at a time, in order (batches
// are applied on a goroutine of the loop's own), after the batch is durable in the store;
// they must not block for long.
type Observer interface {
	// Applied is called after each batch is applied to the store; batch holds the updates
	// in revision order (data updates only, scope-filtered).
	Applied(p Progress, batch []kv.Update)
	// Event reports notable transitions.
	Event(e Event)
}

// Reseeder replaces the store from an external seed (an export) when the cursor expired.
// It returns the new store (already opened, at the seed's cursor) with a description of
// its source and, optionally, the verified watch from the seed's cursor (Resume, which the
// loop continues instead of watching again), or a zero Reseeded when no usable seed
// exists. On success the loop closes nothing: the Reseeder owns closing the old store.
// With an error, Reseeded.Store is nil when old is still open and usable, else the store
// to go on with (a Reseeder that closed old before its swap failed hands over the fold
// reopened); the loop then falls back to a full resync on it.
type Reseeder func(ctx context.Context, old Store) (Reseeded, error)

// Reseeded is what a Reseeder returns.
type Reseeded struct {
	Store  Store
	Source string
	Resume *Resume
}

// LoopConfig configures Run.
type LoopConfig struct {
	Scope kv.Scope
	// BatchWindow closes a batch this long after its first update (default 10ms).
	BatchWindow time.Duration
	// BatchMax closes a batch at this many updates (default 100). While catching up on a
	// backlog batches may grow up to BatchMaxCatchUp (default 10000).
	BatchMax        int
	BatchMaxCatchUp int
	// Apply is the optional domain hook; it runs to completion before the store apply. An
	// error or panic stops Run with that error and no cursor advance.
	Apply func(batch []kv.Update) error
	// Parse optionally filters updates; returning false drops one (the cursor still advances).
	// It runs on the goroutine that fills batches, possibly while Apply (on the goroutine
	// that applies them) handles the previous batch.
	Parse func(u kv.Update) bool
	// Reseed is the optional seeding hook tried on cursor expiry before a full resync.
	Reseed Reseeder
	// Resume, when set, is a verified watch of the store (VerifyResume) that the first
	// watch continues, with its delta, instead of starting from the store's cursor. Run
	// stops it if the store is at another state by then, or when it ends unused.
	Resume   *Resume
	Observer Observer
	Logger   *slog.Logger
}
