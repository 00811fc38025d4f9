package agent_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// writer writes puts and deletes over a key space until stopped, recording each write's
// revision as acknowledged by NATS.
type writer struct {
	b      *kv.Bucket
	keys   int
	prefix string
	stop   context.CancelFunc
	done   chan struct{}
	acks   atomic.Int64
	mu     sync.Mutex
	revs   []uint64 // acknowledged revisions, in order
	errs   atomic.Int64
}

func startWriter(t *testing.T, b *kv.Bucket, prefix string, keys int, perSecond int) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{b: b, keys: keys, prefix: prefix, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var tick *time.Ticker
		if perSecond > 0 {
			tick = time.NewTicker(time.Second / time.Duration(perSecond))
			defer tick.Stop()
		}
		for i := 0; ctx.Err() == nil; i++ {
			if tick != nil {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
			key := fmt.Sprintf("%sk%04d", w.prefix, rand.IntN(w.keys))
			wctx, c := context.WithTimeout(ctx, 2*time.Second)
			var rev uint64
			var err error
			if rand.IntN(10) == 0 {
				rev, err = b.Delete(wctx, key)
			} else {
				rev, err = b.Put(wctx, key, []byte(fmt.Sprintf("value %d of %s", i, key)))
			}
			c()
			if err != nil {
				w.errs.Add(1)
				continue
			}
			w.acks.Add(1)
			w.mu.Lock()
			w.revs = append(w.revs, rev)
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

// TestKill9UnderWriterLosesNothing kills the agent with SIGKILL at random moments while a
// writer runs, restarting it each time on the same data directory; at the end the fold
// equals the bucket exactly (keys, values, revisions), checked with `agent dump`, and
// `agent verify` passes.
func TestKill9UnderWriterLosesNothing(t *testing.T) {
	kills := 25
	if testing.Short() {
		kills = 20
	}
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "crash")
	w := startWriter(t, b, "app.", 500, 0) // as fast as NATS acknowledges
	dir := t.TempDir()
	args := []string{"--nats-url", n.URL(), "--bucket", "crash", "--data-dir", dir, "--batch-window", "2ms"}
	midStream := 0
	for i := range kills {
		a := harness.StartAgent(t, args...)
		// A random moment: at once (opening the store, state sync), a few status polls after
		// the API answers, or once the agent applied a random amount of the writer's progress.
		switch rand.IntN(3) {
		case 1:
			for polls := rand.IntN(6); polls > 0; polls-- {
				_, _ = a.Status()
			}
		case 2:
			target := uint64(w.acks.Load() + rand.Int64N(400))
			proctest.Eventually(t, 60*time.Second, "agent applying the writer's updates", func() error {
				st, err := a.Status()
				if err != nil {
					return err
				}
				if st.Cursor < target {
					return fmt.Errorf("cursor %d < %d", st.Cursor, target)
				}
				return nil
			})
			midStream++
		}
		a.Kill()
		if i%8 == 7 {
			if code, out, errOut := harness.RunAgent(t, nil, "verify", "--data-dir", dir); code != 0 {
				t.Fatalf("verify after kill %d: exit %d %s %s", i+1, code, out, errOut)
			}
		}
	}
	w.halt()
	if w.acks.Load() < 1000 {
		t.Fatalf("writer made only %d writes (%d errors)", w.acks.Load(), w.errs.Load())
	}
	a := harness.StartAgent(t, args...)
	a.WaitCaughtUp(t, b, 30*time.Second)
	a.Terminate(t)
	if err := proctest.Diff(proctest.BucketState(t, b, ""), harness.DumpFold(t, dir)); err != nil {
		t.Fatalf("after %d kills and %d writes: fold != bucket: %v", kills, w.acks.Load(), err)
	}
	if code, out, errOut := harness.RunAgent(t, nil, "verify", "--data-dir", dir); code != 0 {
		t.Fatalf("final verify: exit %d %s %s", code, out, errOut)
	}
	t.Logf("%d kills (%d while applying), %d writes, fold == bucket", kills, midStream, w.acks.Load())
}
