package kv

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

func put(t *testing.T, q *queue, u Update) {
	t.Helper()
	if err := q.put(u, nil); err != nil {
		t.Fatalf("put: %v", err)
	}
}

// waitReader polls until a reader waits on q, so that the next put is what wakes it.
func waitReader(t *testing.T, q *queue) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		q.mu.Lock()
		waiting := q.want > 0
		q.mu.Unlock()
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no reader waiting after 5s")
		}
		runtime.Gosched()
	}
}

func backlog(rev uint64) Update { return Update{Op: OpPut, Key: "k", Revision: rev, Pending: 1000} }

// A reader asking for n updates is not woken by fewer while the server has more pending.
func TestQueueWaitsForMinimum(t *testing.T) {
	q := newQueue(100)
	got := make(chan []Update, 1)
	go func() {
		ups, _ := q.next(context.Background(), nil, 3, 0)
		got <- ups
	}()
	put(t, q, backlog(1))
	put(t, q, backlog(2))
	select {
	case ups := <-got:
		t.Fatalf("reader woke with %d updates, want 3", len(ups))
	case <-time.After(50 * time.Millisecond):
	}
	put(t, q, backlog(3))
	if ups := <-got; len(ups) != 3 || ups[2].Revision != 3 {
		t.Fatalf("got %+v", ups)
	}
}

// The last update the server had pending, and control updates, wake the reader at once.
func TestQueueFlushesTail(t *testing.T) {
	for _, last := range []Update{
		{Op: OpPut, Key: "k", Revision: 2, Pending: 0},
		{Op: OpSynced, Revision: 2},
		{Op: OpForget, Key: "k", Revision: 2, Pending: 7},
	} {
		q := newQueue(100)
		put(t, q, backlog(1))
		got := make(chan []Update, 1)
		go func() {
			ups, _ := q.next(context.Background(), nil, 50, 0)
			got <- ups
		}()
		waitReader(t, q)
		put(t, q, last)
		select {
		case ups := <-got:
			if len(ups) != 2 {
				t.Fatalf("after %v: got %d updates, want 2", last.Op, len(ups))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v did not wake the reader", last.Op)
		}
	}
}

// wait bounds the wait; ctx ends it too. Both return what is buffered, possibly nothing.
func TestQueueWaitAndContext(t *testing.T) {
	q := newQueue(100)
	put(t, q, backlog(1))
	start := time.Now()
	ups, ok := q.next(context.Background(), nil, 10, 20*time.Millisecond)
	if !ok || len(ups) != 1 || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("wait: got %d updates, ok=%v after %s", len(ups), ok, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if ups, ok := q.next(ctx, ups, 1, 0); !ok || len(ups) != 0 {
		t.Fatalf("cancelled: got %d updates, ok=%v", len(ups), ok)
	}
}

// A full queue holds the handler until the reader takes the buffer; a minimum above the
// capacity is capped (it could never be reached).
func TestQueueCapacity(t *testing.T) {
	q := newQueue(2)
	put(t, q, backlog(1))
	put(t, q, backlog(2))
	done := make(chan error, 1)
	go func() { done <- q.put(backlog(3), nil) }()
	select {
	case err := <-done:
		t.Fatalf("put into a full queue returned %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	ups, _ := q.next(context.Background(), nil, 1000, 0)
	if len(ups) != 2 {
		t.Fatalf("got %d updates, want 2", len(ups))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	put(t, q, backlog(4))
	go func() { done <- q.put(backlog(5), stop) }()
	close(stop)
	if err := <-done; !errors.Is(err, errStopped) {
		t.Fatalf("put after stop: %v, want errStopped", err)
	}
}

// After close the reader takes what is left, then sees the end; puts are refused.
func TestQueueClose(t *testing.T) {
	q := newQueue(10)
	put(t, q, backlog(1))
	q.close()
	if err := q.put(backlog(2), nil); !errors.Is(err, errStopped) {
		t.Fatalf("put after close: %v", err)
	}
	ups, ok := q.next(context.Background(), nil, 5, 0)
	if !ok || len(ups) != 1 {
		t.Fatalf("got %d updates, ok=%v; want the buffered one", len(ups), ok)
	}
	if ups, ok := q.next(context.Background(), ups, 1, 0); ok || len(ups) != 0 {
		t.Fatalf("after the end: %d updates, ok=%v", len(ups), ok)
	}
}

// The slice handed back becomes the buffer: a steady reader allocates nothing.
func TestQueueReusesBuffers(t *testing.T) {
	q := newQueue(1000)
	var buf []Update
	allocs := testing.AllocsPerRun(100, func() {
		for i := range 10 {
			_ = q.put(backlog(uint64(i)), nil)
		}
		buf, _ = q.next(context.Background(), buf, 10, 0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round", allocs)
	}
}
