package kv_test

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 30 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// env is a server, a connection and a bucket.
type env struct {
	srv  *natstest.Server
	conn *kv.Conn
	b    *kv.Bucket
	ctx  context.Context
}

func connect(t testing.TB, srv *natstest.Server) *kv.Conn {
	t.Helper()
	c, err := kv.Connect(testCtx(t), kv.Options{URLs: []string{srv.URL()}, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newEnv(t testing.TB, cfg kv.BucketConfig) *env {
	t.Helper()
	srv := natstest.Start(t)
	c := connect(t, srv)
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	ctx := testCtx(t)
	b, err := c.CreateBucket(ctx, cfg)
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return &env{srv: srv, conn: c, b: b, ctx: ctx}
}

func (e *env) put(t testing.TB, key, val string) uint64 {
	t.Helper()
	rev, err := e.b.Put(e.ctx, key, []byte(val))
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return rev
}

func (e *env) del(t testing.TB, key string) uint64 {
	t.Helper()
	rev, err := e.b.Delete(e.ctx, key)
	if err != nil {
		t.Fatalf("delete %q: %v", key, err)
	}
	return rev
}

// fill writes n keys fmt.Sprintf(format, i) with values of size bytes using async publishes.
func fill(t testing.TB, c *kv.Conn, bucket, format string, n, size int) {
	t.Helper()
	js := c.JetStream()
	val := make([]byte, size)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	ctx := testCtx(t)
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync("$KV."+bucket+"."+fmt.Sprintf(format, i), val); err != nil {
			t.Fatalf("publish: %v", err)
		}
		if i%2048 == 2047 {
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				t.Fatal("async publishes did not complete")
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("async publishes did not complete")
	}
}

// mapFold is a simple fold used as the watch's FoldState: key -> live.
type mapFold struct {
	mu     sync.Mutex
	keys   map[string]bool
	vals   map[string]string
	cursor uint64
}

func newFold() *mapFold { return &mapFold{keys: map[string]bool{}, vals: map[string]string{}} }

func (f *mapFold) Count() (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint64(len(f.keys)), nil
}

func (f *mapFold) Holds(key string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.keys[key]
	return ok, nil
}

func (f *mapFold) Keys() iter.Seq2[kv.KeyState, error] {
	f.mu.Lock()
	snap := make([]kv.KeyState, 0, len(f.keys))
	for k, live := range f.keys {
		snap = append(snap, kv.KeyState{Key: k, Live: live})
	}
	f.mu.Unlock()
	return func(yield func(kv.KeyState, error) bool) {
		for _, s := range snap {
			if !yield(s, nil) {
				return
			}
		}
	}
}

func (f *mapFold) apply(u kv.Update) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch u.Op {
	case kv.OpPut:
		f.keys[u.Key] = true
		f.vals[u.Key] = string(u.Value)
	case kv.OpDelete, kv.OpPurge:
		f.keys[u.Key] = false
		delete(f.vals, u.Key)
	case kv.OpForget:
		delete(f.keys, u.Key)
		delete(f.vals, u.Key)
	}
	if u.Revision > f.cursor {
		f.cursor = u.Revision
	}
}

func (f *mapFold) live() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]string, len(f.vals))
	for k, v := range f.vals {
		out[k] = v
	}
	return out
}

// untilSynced reads updates (applying them to fold when non-nil) until OpSynced, failing
// the test on timeout or if the watch ends first. It returns the updates before OpSynced
// and the OpSynced update.
func untilSynced(t testing.TB, w *kv.Watcher, fold *mapFold) ([]kv.Update, kv.Update) {
	t.Helper()
	var got []kv.Update
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	applied := 0
	for {
		select {
		case u, ok := <-w.Updates():
			if !ok {
				t.Fatalf("watch ended before OpSynced: %v (after %d updates)", w.Err(), len(got))
			}
			if fold != nil && (!frozenFold || u.Op == kv.OpSynced) {
				// A frozen fold takes the delta only once it is verified.
				for _, p := range got[applied:] {
					fold.apply(p)
				}
				fold.apply(u)
				applied = len(got) + 1 // u is appended below
			}
			if u.Op == kv.OpSynced {
				return got, u
			}
			got = append(got, u)
		case <-timer.C:
			t.Fatalf("no OpSynced within %s (%d updates)", testTimeout, len(got))
		}
	}
}

// next returns the next update or fails on timeout / end of the watch.
func next(t testing.TB, w *kv.Watcher) kv.Update {
	t.Helper()
	select {
	case u, ok := <-w.Updates():
		if !ok {
			t.Fatalf("watch ended: %v", w.Err())
		}
		return u
	case <-time.After(testTimeout):
		t.Fatal("no update in time")
	}
	return kv.Update{}
}

// waitEnd drains the watch until it ends and returns its error and the updates drained.
func waitEnd(t testing.TB, w *kv.Watcher) ([]kv.Update, error) {
	t.Helper()
	var got []kv.Update
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	for {
		select {
		case u, ok := <-w.Updates():
			if !ok {
				return got, w.Err()
			}
			got = append(got, u)
		case <-timer.C:
			t.Fatalf("watch did not end within %s", testTimeout)
		}
	}
}

// eventually polls cond until it is true or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// streamInfo reads the raw stream state.
func streamInfo(t testing.TB, e *env) *jetstream.StreamInfo {
	t.Helper()
	s, err := e.conn.JetStream().Stream(e.ctx, e.b.Stream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}
