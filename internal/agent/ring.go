package agent

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Errors a watch reader gets from the ring.
var (
	// errCursorTooOld: the reader's position is older than the oldest update the ring
	// still holds (it never held it, or the reader fell behind and it was evicted).
	errCursorTooOld = errors.New("cursor older than the updates this agent keeps")
	// errRingReset: the fold was resynced (cursor expiry, recreated bucket): positions
	// from before are meaningless and readers must re-read the fold.
	errRingReset = errors.New("fold resynced")
	// errRingClosed: the agent is shutting down.
	errRingClosed = errors.New("agent shutting down")
)

// ringEntry is one applied update.
type ringEntry struct {
	Rev   uint64
	Op    kv.Op
	Key   string
	Value []byte
}

func (e ringEntry) size() int { return len(e.Key) + len(e.Value) + 48 }

// ring is the bounded in-memory history of applied updates behind /v1/watch. The fold
// appends after each applied batch and never waits for readers: a reader that falls
// behind the oldest entry gets errCursorTooOld and is cut off.
//
// Invariant: every applied update with revision in (floor, cursor] is in the ring, in
// revision order.
type ring struct {
	mu       sync.Mutex
	buf      []ringEntry // circular
	start, n int
	bytes    int
	maxBytes int
	floor    uint64
	cursor   uint64
	epoch    uint64
	closed   bool
	wake     chan struct{} // closed and replaced on every change
}

func newRing(capacity, maxBytes int, cursor uint64) *ring {
	return &ring{buf: make([]ringEntry, capacity), maxBytes: maxBytes, floor: cursor, cursor: cursor, wake: make(chan struct{})}
}

func (r *ring) at(i int) *ringEntry { return &r.buf[(r.start+i)%len(r.buf)] }

func (r *ring) evictOne() {
	e := r.at(0)
	r.floor = e.Rev
	r.bytes -= e.size()
	*e = ringEntry{}
	r.start = (r.start + 1) % len(r.buf)
	r.n--
}

func (r *ring) signal() {
	close(r.wake)
	r.wake = make(chan struct{})
}

// append records a batch applied at cursor. Updates must be in revision order above the
// previous cursor; anything else (a resync's diff, a recreated bucket) resets the ring, and
// append returns the reason.
func (r *ring) append(cursor uint64, updates []kv.Update) (reset string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ""
	}
	if cursor < r.cursor {
		reset = fmt.Sprintf("cursor moved back from %d to %d", r.cursor, cursor)
	}
	last := r.cursor
	for _, u := range updates {
		if reset != "" {
			break
		}
		if u.Revision <= last || u.Revision > cursor {
			reset = fmt.Sprintf("update at revision %d after %d (batch cursor %d)", u.Revision, last, cursor)
		}
		last = u.Revision
	}
	if reset != "" {
		r.resetLocked(cursor)
		return reset
	}
	for _, u := range updates {
		e := ringEntry{Rev: u.Revision, Op: u.Op, Key: u.Key, Value: u.Value}
		for r.n > 0 && (r.n == len(r.buf) || r.bytes+e.size() > r.maxBytes) {
			r.evictOne()
		}
		if e.size() > r.maxBytes {
			// Too large to keep: readers older than it must re-read the fold.
			r.floor = e.Rev
			continue
		}
		*r.at(r.n) = e
		r.n++
		r.bytes += e.size()
	}
	r.cursor = cursor
	r.signal()
	return ""
}

// reset drops the history: readers get errRingReset; new readers start at cursor.
func (r *ring) reset(cursor uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resetLocked(cursor)
}

func (r *ring) resetLocked(cursor uint64) {
	for r.n > 0 {
		r.evictOne()
	}
	r.floor, r.cursor = cursor, cursor
	r.epoch++
	r.signal()
}

// close ends the ring: readers get what remains, then errRingClosed.
func (r *ring) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.signal()
	}
}

// position is a reader's place in the ring.
type position struct {
	After uint64 // last revision delivered (or the cursor it started after)
	Epoch uint64
}

// start validates a reader's starting cursor. after < 0 means "from now".
func (r *ring) begin(after int64) (position, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return position{}, errRingClosed
	}
	if after < 0 {
		return position{After: r.cursor, Epoch: r.epoch}, nil
	}
	if uint64(after) < r.floor {
		return position{}, errCursorTooOld
	}
	return position{After: uint64(after), Epoch: r.epoch}, nil
}

// oldest returns the oldest cursor a reader can start after.
func (r *ring) oldest() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.floor
}

// read appends to dst up to limit entries after pos, and returns them with the applied
// cursor (which may be above the last entry) and a channel closed on the next change.
func (r *ring) read(pos position, dst []ringEntry, limit int) ([]ringEntry, uint64, <-chan struct{}, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed && pos.After >= r.cursor:
		// Readers drain what was applied before the close, then end.
		return dst, 0, nil, errRingClosed
	case pos.Epoch != r.epoch:
		return dst, 0, nil, errRingReset
	case pos.After < r.floor:
		return dst, 0, nil, errCursorTooOld
	}
	i := sort.Search(r.n, func(i int) bool { return r.at(i).Rev > pos.After })
	for ; i < r.n && limit > 0; i, limit = i+1, limit-1 {
		dst = append(dst, *r.at(i))
	}
	return dst, r.cursor, r.wake, nil
}
