package fold_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/memory"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

const waitFor = 20 * time.Second

type fixture struct {
	t      *testing.T
	srv    *natstest.Server
	conn   *kv.Conn
	bucket *kv.Bucket
}

func newFixture(t *testing.T, cfg kv.BucketConfig) *fixture {
	t.Helper()
	srv := natstest.Start(t)
	ctx := context.Background()
	conn, err := kv.Connect(ctx, kv.Options{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if cfg.Name == "" {
		cfg.Name = "fold"
	}
	b, err := conn.CreateBucket(ctx, cfg)
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return &fixture{t: t, srv: srv, conn: conn, bucket: b}
}

func (f *fixture) put(key, value string) uint64 {
	f.t.Helper()
	rev, err := f.bucket.Put(context.Background(), key, []byte(value))
	if err != nil {
		f.t.Fatalf("put %s: %v", key, err)
	}
	return rev
}

func (f *fixture) del(key string) {
	f.t.Helper()
	if _, err := f.bucket.Delete(context.Background(), key); err != nil {
		f.t.Fatalf("delete %s: %v", key, err)
	}
}

func (f *fixture) purge(key string) {
	f.t.Helper()
	if _, err := f.bucket.Purge(context.Background(), key); err != nil {
		f.t.Fatalf("purge %s: %v", key, err)
	}
}

// bucketState is the bucket's live keys within scope, read independently of the fold.
func (f *fixture) bucketState(scope kv.Scope) map[string]val {
	f.t.Helper()
	out := map[string]val{}
	for e, err := range f.bucket.Scan(context.Background(), "") {
		if err != nil {
			f.t.Fatalf("scan: %v", err)
		}
		if e.Op == kv.OpPut && scope.Contains(e.Key) {
			out[e.Key] = val{string(e.Value), e.Revision}
		}
	}
	return out
}

type val struct {
	Value    string
	Revision uint64
}

func foldState(t *testing.T, s fold.Store) map[string]val {
	t.Helper()
	out := map[string]val{}
	for e, err := range s.Range("", false) {
		if err != nil {
			t.Fatalf("range fold: %v", err)
		}
		out[e.Key] = val{string(e.Value), e.Revision}
	}
	return out
}

func openMemory(t *testing.T, dir string) fold.Store {
	t.Helper()
	s, err := memory.Open(dir, memory.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

// recorder is an Observer that keeps what the loop reported.
type recorder struct {
	mu      sync.Mutex
	events  []fold.Event
	applied []kv.Update
	last    fold.Progress
}

func (r *recorder) Applied(p fold.Progress, batch []kv.Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = p
	r.applied = append(r.applied, batch...)
}

func (r *recorder) Event(e fold.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) count(kind fold.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func (r *recorder) appliedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.applied)
}

func (r *recorder) progress() fold.Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// running is a loop started in the background.
type running struct {
	loop   *fold.Loop
	cancel context.CancelFunc
	done   chan struct{}
	state  fold.State
	err    error
}

func start(l *fold.Loop) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{loop: l, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.state, r.err = l.Run(ctx)
	}()
	return r
}

func (r *running) stop(t *testing.T) (fold.State, error) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(waitFor):
		t.Fatal("loop did not stop")
	}
	return r.state, r.err
}

// foldAndClose folds the bucket into a new memory store in dir until it equals the
// bucket, stops and closes it, and returns its final state.
func foldAndClose(t *testing.T, f *fixture, dir string) fold.State {
	t.Helper()
	store := openMemory(t, dir)
	defer func() { _ = store.Close() }()
	r := start(fold.NewLoop(f.bucket, store, fold.LoopConfig{}))
	waitEqual(t, func() fold.Store { return store }, func() map[string]val { return f.bucketState(kv.All()) })
	st, err := r.stop(t)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitEqual polls until the fold equals want, failing with the difference at the deadline.
func waitEqual(t *testing.T, s func() fold.Store, want func() map[string]val) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got, w := foldState(t, s()), want()
		if maps.Equal(got, w) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fold != bucket after %s: %s", waitFor, diffStates(got, w))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool, recs ...*recorder) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			for _, r := range recs {
				r.mu.Lock()
				t.Logf("events: %+v; progress %+v", r.events, r.last)
				r.mu.Unlock()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func diffStates(got, want map[string]val) string {
	var out []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			out = append(out, fmt.Sprintf("missing %s", k))
		} else if g != w {
			out = append(out, fmt.Sprintf("%s: got %v want %v", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("stale %s", k))
		}
	}
	slices.Sort(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("... %d more", len(out)-10))
	}
	return fmt.Sprint(out)
}

func TestLoopStateSyncThenLive(t *testing.T) {
	f := newFixture(t, kv.BucketConfig{History: 5})
	for i := range 300 {
		f.put(fmt.Sprintf("route.r%03d", i), fmt.Sprintf("v%d", i))
	}
	f.del("route.r007")
	f.purge("route.r008")
	store := openMemory(t, t.TempDir())
	defer func() { _ = store.Close() }()
	rec := &recorder{}
	r := start(fold.NewLoop(f.bucket, store, fold.LoopConfig{Observer: rec}))
	waitUntil(t, "initial sync", func() bool { return rec.count(fold.EventSynced) == 1 })
	waitEqual(t, func() fold.Store { return store }, func() map[string]val { return f.bucketState(kv.All()) })
	if st, _ := store.Stats(); st.Tombstones != 2 {
		t.Fatalf("tombstones = %d, want 2 (delete and purge markers)", st.Tombstones)
	}
	for i := range 50 {
		f.put(fmt.Sprintf("cert.c%02d", i), "pem")
	}
	f.del("route.r001")
	waitEqual(t, func() fold.Store { return store }, func() map[string]val { return f.bucketState(kv.All()) })
	if !rec.progress().Synced {
		t.Fatal("progress not marked synced after the initial sync")
	}
	st, err := r.stop(t)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	bs, _ := f.bucket.Status(context.Background())
	if st.Cursor != bs.LastSeq {
		t.Fatalf("final cursor %d, want the bucket's last sequence %d", st.Cursor, bs.LastSeq)
	}
}

func TestLoopScopeIsExact(t *testing.T) {
	f := newFixture(t, kv.BucketConfig{})
	scope := kv.Prefixes("route.", "cert.")
	for i := range 100 {
		f.put(fmt.Sprintf("route.r%d", i), "x")
		f.put(fmt.Sprintf("wasm.w%d", i), "y")
		f.put(fmt.Sprintf("cert.c%d", i), "z")
	}
	store := openMemory(t, t.TempDir())
	defer func() { _ = store.Close() }()
	r := start(fold.NewLoop(f.bucket, store, fold.LoopConfig{Scope: scope}))
	waitEqual(t, func() fold.Store { return store }, func() map[string]val { return f.bucketState(scope) })
	f.put("wasm.late", "nope")
	f.put("route.late", "yes")
	waitEqual(t, func() fold.Store { return store }, func() map[string]val { return f.bucketState(scope) })
	if _, ok, _ := store.Lookup("wasm.late"); ok {
		t.Fatal("fold holds a key outside its scope")
	}
	if _, err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// A restart after rewriting every key of a history-1 bucket moves the stream's first
// sequence far past the cursor with nothing lost: the resume must stay delta-only.
func TestLoopHistoryOneRestartIsDeltaOnly(t *testing.T) {
	f := newFixture(t, kv.BucketConfig{History: 1})
	const keys = 200
	for i := range keys {
		f.put(fmt.Sprintf("k%03d", i), "v0")
	}
	dir := t.TempDir()
	st := foldAndClose(t, f, dir)

	for round := 1; round <= 3; round++ {
		for i := range keys {
			f.put(fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d", round))
		}
	}
	f.put("new", "1")
	bs, _ := f.bucket.Status(context.Background())
	if bs.FirstSeq <= st.Cursor+1 {
		t.Fatalf("test setup: first seq %d should be past cursor+1 = %d", bs.FirstSeq, st.Cursor+1)
	}

	store := openMemory(t, dir)
	defer func() { _ = store.Close() }()
	rec := &recorder{}
	r := start(fold.NewLoop(f.bucket, store, fold.LoopConfig{Observer: rec}))
	waitUntil(t, "verified resume", func() bool { return rec.count(fold.EventSynced) == 1 })
	waitEqual(t, func() fold.Store { return store }, func() map[string]val { return f.bucketState(kv.All()) })
	if _, err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := rec.count(fold.EventCursorExpired) + rec.count(fold.EventResyncStarted); n != 0 {
		t.Fatalf("history-1 rewrites were treated as expiry (%d events)", n)
	}
	// The stream holds exactly one message per key: the delta is keys+1 messages, not a replay
	// of the 3*keys writes, and no more.
	if got := rec.appliedCount(); got != keys+1 {
		t.Fatalf("resume delivered %d updates, want the %d-message delta", got, keys+1)
	}
}

// A key deleted while the fold is away, whose delete marker is then purged from the stream,
// can only disappear from the fold if the resume detects the expiry and the resync diff
// runs. With the diff off the stale key stays: the test can fail.
func TestLoopOfflineDeleteWithPurgedMarker(t *testing.T) {
	for _, diff := range []bool{true, false} {
		t.Run(fmt.Sprintf("diff=%v", diff), func(t *testing.T) {
			f := newFixture(t, kv.BucketConfig{History: 1})
			for i := range 20 {
				f.put(fmt.Sprintf("route.r%02d", i), "v")
			}
			dir := t.TempDir()
			foldAndClose(t, f, dir)

			f.del("route.r05")
			f.put("route.r06", "changed")
			if err := f.bucket.PurgeDeletes(context.Background(), -1); err != nil {
				t.Fatalf("purge deletes: %v", err)
			}

			store := openMemory(t, dir)
			defer func() { _ = store.Close() }()
			rec := &recorder{}
			l := fold.NewLoop(f.bucket, store, fold.LoopConfig{Observer: rec})
			if !diff {
				fold.DisableResyncDiff(l)
			}
			r := start(l)
			waitUntil(t, "resync", func() bool { return rec.count(fold.EventResyncDone) == 1 }, rec)
			if _, err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			if rec.count(fold.EventCursorExpired) != 1 {
				t.Fatalf("cursor expiry not reported: %+v", rec.events)
			}
			_, stale, _ := store.Get("route.r05")
			if diff && stale {
				t.Fatal("key deleted while away is still in the fold after the resync")
			}
			if !diff && !stale {
				t.Fatal("with the diff disabled the stale key should remain (the test cannot fail otherwise)")
			}
			if got, _, _ := store.Get("route.r06"); string(got.Value) != "changed" {
				t.Fatalf("route.r06 = %q after resync", got.Value)
			}
			if diff && store.State().Resyncing {
				t.Fatal("resync flag still set after the diff")
			}
		})
	}
}

// A crash between delivery and apply re-delivers on restart: a failing apply hook stops the
// loop without advancing the cursor, and the next run sees the same updates again.
func TestLoopApplyFailureRedelivers(t *testing.T) {
	for _, mode := range []string{"error", "panic"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, kv.BucketConfig{})
			store := openMemory(t, t.TempDir())
			defer func() { _ = store.Close() }()
			var mu sync.Mutex
			var seen []uint64
			armed := false
			hook := func(batch []kv.Update) error {
				mu.Lock()
				defer mu.Unlock()
				for _, u := range batch {
					if armed && u.Key == "boom" {
						if mode == "panic" {
							panic("domain logic exploded")
						}
						return errors.New("domain logic refused")
					}
					seen = append(seen, u.Revision)
				}
				return nil
			}
			l := fold.NewLoop(f.bucket, store, fold.LoopConfig{Apply: hook})
			r := start(l)
			f.put("a", "1")
			waitUntil(t, "first apply", func() bool { return store.State().Cursor > 0 })
			before := store.State().Cursor
			mu.Lock()
			armed = true
			mu.Unlock()
			rev := f.put("boom", "2")
			select {
			case <-r.done:
			case <-time.After(waitFor):
				t.Fatal("loop did not stop on hook failure")
			}
			if !errors.Is(r.err, fold.ErrApplyHook) {
				t.Fatalf("run error = %v, want ErrApplyHook", r.err)
			}
			if got := store.State().Cursor; got != before {
				t.Fatalf("cursor advanced to %d past a failed apply (was %d)", got, before)
			}
			mu.Lock()
			armed = false
			mu.Unlock()
			r = start(fold.NewLoop(f.bucket, store, fold.LoopConfig{Apply: hook}))
			waitUntil(t, "redelivery", func() bool { return store.State().Cursor >= rev })
			if _, err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Contains(seen, rev) {
				t.Fatalf("update %d was not re-delivered after the failed apply", rev)
			}
		})
	}
}

// Model-based: random puts, deletes and purges across prefixes, with restarts and crashes
// (failed applies), and after each step the fold equals the bucket within scope.
func TestLoopModelRandomOps(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed*7919))
			f := newFixture(t, kv.BucketConfig{History: uint8(1 + rng.IntN(3))})
			scope := kv.Prefixes("route.", "cert.")
			prefixes := []string{"route.", "cert.", "wasm."}
			dir := t.TempDir()
			store := openMemory(t, dir)
			var crash sync.Mutex
			crashNext := false
			hook := func([]kv.Update) error {
				crash.Lock()
				defer crash.Unlock()
				if crashNext {
					crashNext = false
					return errors.New("injected crash")
				}
				return nil
			}
			cfg := fold.LoopConfig{Scope: scope, Apply: hook, BatchMax: 1 + rng.IntN(20)}
			r := start(fold.NewLoop(f.bucket, store, cfg))
			for step := range 30 {
				for range 1 + rng.IntN(40) {
					key := fmt.Sprintf("%sk%d", prefixes[rng.IntN(len(prefixes))], rng.IntN(25))
					switch p := rng.IntN(10); {
					case p < 7:
						f.put(key, fmt.Sprintf("s%d-%d", step, rng.IntN(1000)))
					case p < 9:
						f.del(key)
					default:
						f.purge(key)
					}
				}
				switch rng.IntN(5) {
				case 0: // clean restart
					if _, err := r.stop(t); err != nil {
						t.Fatal(err)
					}
					_ = store.Close()
					store = openMemory(t, dir)
					r = start(fold.NewLoop(f.bucket, store, cfg))
				case 1: // crash: the next apply fails, the loop stops, the store reopens
					crash.Lock()
					crashNext = true
					crash.Unlock()
					f.put("route.crash", fmt.Sprint(step))
					select {
					case <-r.done:
					case <-time.After(waitFor):
						t.Fatal("loop did not stop on the injected crash")
					}
					_ = store.Close()
					store = openMemory(t, dir)
					r = start(fold.NewLoop(f.bucket, store, cfg))
				}
				s := store
				waitEqual(t, func() fold.Store { return s }, func() map[string]val { return f.bucketState(scope) })
			}
			if _, err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			_ = store.Close()
		})
	}
}

// With limit markers, a key removed by max age produces a server marker that the fold
// applies as a removal while it is connected. (Without markers NATS reports nothing; see
// docs/cursor-expiry.md.)
func TestLoopLimitMarkerRemovesAgedKey(t *testing.T) {
	f := newFixture(t, kv.BucketConfig{MaxAge: time.Second, LimitMarkerTTL: time.Second})
	store := openMemory(t, t.TempDir())
	defer func() { _ = store.Close() }()
	r := start(fold.NewLoop(f.bucket, store, fold.LoopConfig{}))
	f.put("cert.short-lived", "pem")
	waitUntil(t, "key folded", func() bool { _, ok, _ := store.Get("cert.short-lived"); return ok })
	waitUntil(t, "aged key removed by its marker", func() bool { _, ok, _ := store.Get("cert.short-lived"); return !ok })
	if _, err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}
