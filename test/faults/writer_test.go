package faults_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// ack is one write NATS acknowledged.
type ack struct {
	key    string
	rev    uint64
	delete bool
}

// writer puts and deletes keys until stopped, keeping every write NATS acknowledged. A
// write whose acknowledgement was lost (an error) may still have landed; it is not counted
// as written, and the comparison with the bucket covers it.
type writer struct {
	stop   context.CancelFunc
	done   chan struct{}
	acked  atomic.Int64
	failed atomic.Int64
	mu     sync.Mutex
	acks   []ack
}

// startWriter writes to keys prefix+k0000.. (keys of them) with values of valueSize bytes,
// one write every interval (0: as fast as NATS acknowledges). One write in ten is a delete.
func startWriter(t testing.TB, b *kv.Bucket, prefix string, keys, valueSize int, interval time.Duration) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		pad := strings.Repeat("x", max(0, valueSize-24))
		for i := 0; ctx.Err() == nil; i++ {
			if interval > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(interval):
				}
			}
			key := fmt.Sprintf("%sk%04d", prefix, rand.IntN(keys))
			wctx, c := context.WithTimeout(ctx, 2*time.Second)
			del := rand.IntN(10) == 0
			var rev uint64
			var err error
			if del {
				rev, err = b.Delete(wctx, key)
			} else {
				rev, err = b.Put(wctx, key, fmt.Appendf(nil, "%d %s", i, pad))
			}
			c()
			if err != nil {
				if ctx.Err() == nil {
					w.failed.Add(1)
					time.Sleep(10 * time.Millisecond) // the server is down: do not spin
				}
				continue
			}
			w.acked.Add(1)
			w.mu.Lock()
			w.acks = append(w.acks, ack{key: key, rev: rev, delete: del})
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *writer) halt() {
	w.stop()
	<-w.done
}

// waitAcked waits until the writer has n more acknowledged writes than now.
func (w *writer) waitAcked(t testing.TB, n int64, within time.Duration) {
	t.Helper()
	target := w.acked.Load() + n
	proctest.Eventually(t, within, "writer progress", func() error {
		if got := w.acked.Load(); got < target {
			return fmt.Errorf("%d acknowledged writes, want %d (%d failed)", got, target, w.failed.Load())
		}
		return nil
	})
}

// lost counts acknowledged writes the fold does not reflect: the fold holds the key at an
// older revision, or lacks a key whose last acknowledged write was a put while the bucket
// (after a later, unacknowledged delete) does not lack it too.
func (w *writer) lost(fold, bucket []proctest.Entry) int {
	foldRev := make(map[string]uint64, len(fold))
	for _, e := range fold {
		foldRev[e.Key] = e.Revision
	}
	inBucket := make(map[string]bool, len(bucket))
	for _, e := range bucket {
		inBucket[e.Key] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.acks {
		rev, live := foldRev[a.key]
		switch {
		case live && rev >= a.rev: // this write or a later one
		case !live && (a.delete || !inBucket[a.key]): // deleted by this write or a later one
		default:
			n++
		}
	}
	return n
}
