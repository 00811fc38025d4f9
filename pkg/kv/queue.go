package kv

import (
	"context"
	"sync"
	"time"
)

// queue carries updates from the watch's message handler to the reader in slices, not one
// by one: a backlog costs the reader one wake-up per slice instead of one per update,
// which matters when NATS delivery and the fold share two cores.
//
// The handler appends under the queue's lock and blocks while capacity updates are
// buffered. A reader asks for at least min updates; it is woken when that many are
// buffered, or earlier when the update just added is the last one the server had pending
// (or a control update such as OpSynced), so a quiet watch delivers each update at once.
type queue struct {
	mu       sync.Mutex
	buf      []Update
	capacity int
	closed   bool
	want     int           // the waiting reader's min; 0 when no reader waits
	wake     chan struct{} // reader wake-up (capacity 1)
	space    chan struct{} // handler wake-up after the reader took the buffer (capacity 1)
}

func newQueue(capacity int) *queue {
	return &queue{
		buf:      make([]Update, 0, min(capacity, 1024)),
		capacity: capacity,
		wake:     make(chan struct{}, 1),
		space:    make(chan struct{}, 1),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// put appends u, waiting while the queue is full. It returns errStopped when done closes
// first, or when the queue was closed.
func (q *queue) put(u Update, done <-chan struct{}) error {
	q.mu.Lock()
	for len(q.buf) >= q.capacity && !q.closed {
		q.mu.Unlock()
		select {
		case <-q.space:
		case <-done:
			return errStopped
		}
		q.mu.Lock()
	}
	if q.closed {
		q.mu.Unlock()
		return errStopped
	}
	q.buf = append(q.buf, u)
	if q.want > 0 && (len(q.buf) >= q.want || flushes(u)) {
		q.want = 0
		signal(q.wake)
	}
	q.mu.Unlock()
	return nil
}

// full reports whether put would wait.
func (q *queue) full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf) >= q.capacity
}

// close ends the queue: the reader takes what is buffered, then sees the end.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	signal(q.wake)
	signal(q.space)
}

// next waits as described at Watcher.Next and returns the buffered updates, keeping
// reuse[:0] as the new buffer.
func (q *queue) next(ctx context.Context, reuse []Update, minimum int, wait time.Duration) ([]Update, bool) {
	// More than the queue holds would never come: the handler waits for space first.
	minimum = min(max(minimum, 1), q.capacity)
	var timer *time.Timer // started on the first wait only: a ready buffer needs none
	var timeout <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	q.mu.Lock()
	for !q.closed && !q.ready(minimum) {
		if timer == nil && wait > 0 {
			timer = time.NewTimer(wait)
			timeout = timer.C
		}
		q.want = minimum
		// A wake-up signalled after an earlier wait ended would end this one at once.
		select {
		case <-q.wake:
		default:
		}
		q.mu.Unlock()
		expired := false
		select {
		case <-q.wake:
		case <-timeout:
			expired = true
		case <-ctx.Done():
			expired = true
		}
		q.mu.Lock()
		q.want = 0
		if expired {
			break
		}
	}
	out := q.buf
	full := len(out) >= q.capacity
	q.buf = reuse[:0]
	closed := q.closed
	q.mu.Unlock()
	if full {
		signal(q.space)
	}
	if len(out) == 0 && closed {
		return nil, false
	}
	return out, true
}

// ready reports whether a reader asking for minimum updates may take the buffer: it holds
// that many, or its last update is the last one the server had pending (or a control
// update), so waiting for more would only add latency. Called with mu held.
func (q *queue) ready(minimum int) bool {
	n := len(q.buf)
	return n >= minimum || n > 0 && flushes(q.buf[n-1])
}

// flushes: after u, nothing more is known to be on its way.
func flushes(u Update) bool {
	return u.Pending == 0 || u.Op != OpPut && u.Op != OpDelete
}
