package kv_test

import (
	"errors"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// syncFold state-syncs a fresh fold from the bucket and returns it at its cursor.
func syncFold(t *testing.T, e *env, scope kv.Scope) *mapFold {
	t.Helper()
	fold := newFold()
	w, err := e.b.Watch(e.ctx, scope, kv.WatchOptions{Fold: fold})
	if err != nil {
		t.Fatal(err)
	}
	_, synced := untilSynced(t, w, fold)
	w.Stop()
	fold.cursor = synced.Revision
	return fold
}

// frozenFold makes resume promise a frozen fold (kv.WatchOptions.FoldFrozen); untilSynced
// then applies the updates before OpSynced only when OpSynced came.
var frozenFold bool

// readyFold (with frozenFold) makes resume hand the fold over late
// (kv.WatchOptions.FoldReady), as seeding does with an export still being staged: the
// watch delivers and counts meanwhile, but must not read the fold before it is ready
// (gatedFold), so it cannot deliver OpSynced before either.
var readyFold bool

func resume(t *testing.T, e *env, scope kv.Scope, fold *mapFold) *kv.Watcher {
	t.Helper()
	opts := kv.WatchOptions{Cursor: fold.cursor, Fold: fold, FoldFrozen: frozenFold}
	var gated *gatedFold
	if readyFold {
		gated = &gatedFold{mapFold: fold, t: t, ready: make(chan struct{})}
		opts.Fold, opts.FoldReady = gated, gated.ready
	}
	w, err := e.b.Watch(e.ctx, scope, opts)
	if err != nil {
		t.Fatalf("resume from %d: %v", fold.cursor, err)
	}
	t.Cleanup(w.Stop)
	if gated != nil {
		time.Sleep(100 * time.Millisecond) // the delta is delivered and counted meanwhile
		close(gated.ready)
	}
	return w
}

// gatedFold fails the test when the watch reads the fold before ready is closed.
type gatedFold struct {
	*mapFold
	t     *testing.T
	ready chan struct{}
}

func (g *gatedFold) check(what string) {
	select {
	case <-g.ready:
	default:
		g.t.Errorf("fold %s read before FoldReady was closed", what)
	}
}

func (g *gatedFold) Count() (uint64, error) {
	g.check("count")
	return g.mapFold.Count()
}

func (g *gatedFold) Holds(key string) (bool, error) {
	g.check("key")
	return g.mapFold.Holds(key)
}

func (g *gatedFold) Keys() iter.Seq2[kv.KeyState, error] {
	g.check("keys")
	return g.mapFold.Keys()
}

// Pins the server behaviour the whole check exists for: a consumer asked to start below
// the stream's first sequence starts at the first sequence, without any error.
func TestServerClampsStartBelowFirstSequence(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{History: 1})
	for i := 0; i < 5; i++ {
		e.put(t, "k", fmt.Sprint(i)) // history 1: only seq 5 remains
	}
	if first := streamInfo(t, e).State.FirstSeq; first != 5 {
		t.Fatalf("first seq = %d, want 5", first)
	}
	cons, err := e.conn.JetStream().OrderedConsumer(e.ctx, e.b.Stream(), jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   2,
	})
	if err != nil {
		t.Fatalf("consumer below first seq: %v", err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(testTimeout))
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	meta, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if meta.Sequence.Stream != 5 {
		t.Fatalf("first delivered seq = %d, want the clamped 5", meta.Sequence.Stream)
	}
}

func TestResumeAgeEvictionIsExpiry(t *testing.T) { bothPaths(t, testResumeAgeEvictionIsExpiry) }

func testResumeAgeEvictionIsExpiry(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{MaxAge: time.Second})
	e.put(t, "a", "1")
	e.put(t, "b", "1")
	fold := syncFold(t, e, kv.All())
	eventually(t, "messages to age out", func() bool { return streamInfo(t, e).State.Msgs == 0 })
	e.put(t, "c", "1") // the stream moves on; a and b are gone without a trace
	w := resume(t, e, kv.All(), fold)
	_, err := waitEnd(t, w)
	if !errors.Is(err, kv.ErrCursorExpired) {
		t.Fatalf("Err = %v, want ErrCursorExpired", err)
	}
}

func TestResumePurgedDeleteMarkerIsExpiry(t *testing.T) {
	bothPaths(t, testResumePurgedDeleteMarkerIsExpiry)
}

func testResumePurgedDeleteMarkerIsExpiry(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{History: 5})
	e.put(t, "x", "1")
	e.put(t, "y", "1")
	fold := syncFold(t, e, kv.All())
	e.del(t, "x") // after the cursor: the fold still holds x live
	if err := e.b.PurgeDeletes(e.ctx, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Entry(e.ctx, "x"); !errors.Is(err, kv.ErrKeyNotFound) {
		t.Fatalf("marker still there: %v", err)
	}
	w := resume(t, e, kv.All(), fold)
	_, err := waitEnd(t, w)
	if !errors.Is(err, kv.ErrCursorExpired) {
		t.Fatalf("Err = %v, want ErrCursorExpired", err)
	}
}

func TestResumeHistoryOneRewritesAreNotExpiry(t *testing.T) {
	bothPaths(t, testResumeHistoryOneRewritesAreNotExpiry)
}

func testResumeHistoryOneRewritesAreNotExpiry(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{History: 1})
	const n = 100
	for i := 0; i < n; i++ {
		e.put(t, fmt.Sprintf("k%03d", i), "0")
	}
	fold := syncFold(t, e, kv.All())
	for round := 1; round <= 2; round++ {
		for i := 0; i < n; i++ {
			e.put(t, fmt.Sprintf("k%03d", i), fmt.Sprint(round))
		}
	}
	info := streamInfo(t, e)
	if info.State.FirstSeq <= fold.cursor+1 {
		t.Fatalf("first seq %d did not move past cursor+1 = %d", info.State.FirstSeq, fold.cursor+1)
	}
	checks := kv.ExactChecks()
	w := resume(t, e, kv.All(), fold)
	got, synced := untilSynced(t, w, fold)
	if c := kv.ExactChecks() - checks; c != 0 {
		t.Errorf("ordinary restart ran %d exact checks, want the cheap count check only", c)
	}
	if len(got) != n {
		t.Fatalf("resume delivered %d updates, want the %d-key delta", len(got), n)
	}
	for _, u := range got {
		if u.Op != kv.OpPut || string(u.Value) != "2" || u.Revision <= fold.cursor-n {
			t.Fatalf("unexpected update %+v", u)
		}
	}
	if synced.Revision != info.State.LastSeq {
		t.Errorf("synced at %d, want %d", synced.Revision, info.State.LastSeq)
	}
	w.Stop()
	if err := w.Err(); err != nil {
		t.Fatalf("Err = %v", err)
	}
}

func TestResumeStaleTombstoneIsForgotten(t *testing.T) {
	bothPaths(t, testResumeStaleTombstoneIsForgotten)
}

func testResumeStaleTombstoneIsForgotten(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{History: 5})
	e.put(t, "keep", "1")
	e.put(t, "gone", "1")
	e.del(t, "gone")
	fold := syncFold(t, e, kv.All())
	if live, ok := fold.keys["gone"]; !ok || live {
		t.Fatalf("fold should hold a tombstone for gone: %v", fold.keys)
	}
	if err := e.b.PurgeDeletes(e.ctx, -1); err != nil {
		t.Fatal(err)
	}
	e.put(t, "new", "1")
	w := resume(t, e, kv.All(), fold)
	got, _ := untilSynced(t, w, fold)
	var forgot, puts int
	for _, u := range got {
		switch {
		case u.Op == kv.OpForget && u.Key == "gone":
			forgot++
		case u.Op == kv.OpPut && u.Key == "new":
			puts++
		default:
			t.Errorf("unexpected update %+v", u)
		}
	}
	if forgot != 1 || puts != 1 {
		t.Fatalf("forget=%d put=%d, want 1 and 1 (%v)", forgot, puts, got)
	}
	if _, ok := fold.keys["gone"]; ok {
		t.Fatal("tombstone not dropped")
	}
	w.Stop()
	// The next restart matches by count: no forget, no error.
	w = resume(t, e, kv.All(), fold)
	got, _ = untilSynced(t, w, fold)
	if len(got) != 0 {
		t.Fatalf("second resume delivered %v", got)
	}
}

func TestResumeEmptyDelta(t *testing.T) { bothPaths(t, testResumeEmptyDelta) }

func testResumeEmptyDelta(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	e.put(t, "a", "1")
	fold := syncFold(t, e, kv.All())
	w := resume(t, e, kv.All(), fold)
	got, synced := untilSynced(t, w, fold)
	if len(got) != 0 || synced.Revision != fold.cursor {
		t.Fatalf("got %v synced %+v, want nothing at %d", got, synced, fold.cursor)
	}
}

func TestResumeCursorBeyondStreamIsExpiry(t *testing.T) {
	bothPaths(t, testResumeCursorBeyondStreamIsExpiry)
}

func testResumeCursorBeyondStreamIsExpiry(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	e.put(t, "a", "1")
	fold := newFold()
	fold.keys["a"] = true
	fold.cursor = 100 // from a previous incarnation of the bucket
	w := resume(t, e, kv.All(), fold)
	if _, err := waitEnd(t, w); !errors.Is(err, kv.ErrCursorExpired) {
		t.Fatalf("Err = %v, want ErrCursorExpired", err)
	}
}

func TestResumePrefixScope(t *testing.T) { bothPaths(t, testResumePrefixScope) }

func testResumePrefixScope(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{History: 1})
	scope := kv.Prefixes("in.", "also.")
	for i := 0; i < 20; i++ {
		e.put(t, fmt.Sprintf("in.%d", i), "0")
		e.put(t, fmt.Sprintf("out.%d", i), "0")
		e.put(t, fmt.Sprintf("also.%d", i), "0")
	}
	fold := syncFold(t, e, scope)
	if n, _ := fold.Count(); n != 40 {
		t.Fatalf("fold holds %d keys, want 40", n)
	}
	// Rewrites inside and outside the scope; purges outside do not matter.
	for i := 0; i < 20; i++ {
		e.put(t, fmt.Sprintf("in.%d", i), "1")
		if _, err := e.b.Purge(e.ctx, fmt.Sprintf("out.%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.b.PurgeDeletes(e.ctx, -1); err != nil {
		t.Fatal(err)
	}
	w := resume(t, e, scope, fold)
	got, _ := untilSynced(t, w, fold)
	if len(got) != 20 {
		t.Fatalf("delta = %d updates, want 20", len(got))
	}
	w.Stop()

	// Now a key in scope vanishes after the cursor: expiry.
	cursor := fold.cursor
	e.del(t, "also.3")
	if err := e.b.PurgeDeletes(e.ctx, -1); err != nil {
		t.Fatal(err)
	}
	fold.cursor = cursor
	w = resume(t, e, scope, fold)
	if _, err := waitEnd(t, w); !errors.Is(err, kv.ErrCursorExpired) {
		t.Fatalf("Err = %v, want ErrCursorExpired", err)
	}
}

// bothPaths runs a resume scenario with the delta fetched by direct gets and by the
// ordered consumer, each with a fold that changes as the delta comes and with a frozen
// one (its keys looked up in parallel at the end).
func bothPaths(t *testing.T, f func(t *testing.T)) {
	t.Run("direct", f)
	t.Run("consumer", func(t *testing.T) {
		defer kv.SetDirectMaxSeqs(0)()
		f(t)
	})
	t.Run("direct-frozen", func(t *testing.T) {
		frozenFold = true
		defer func() { frozenFold = false }()
		f(t)
	})
	t.Run("consumer-frozen", func(t *testing.T) {
		defer kv.SetDirectMaxSeqs(0)()
		frozenFold = true
		defer func() { frozenFold = false }()
		f(t)
	})
	t.Run("direct-ready", func(t *testing.T) {
		frozenFold, readyFold = true, true
		defer func() { frozenFold, readyFold = false, false }()
		f(t)
	})
	t.Run("consumer-ready", func(t *testing.T) {
		defer kv.SetDirectMaxSeqs(0)()
		frozenFold, readyFold = true, true
		defer func() { frozenFold, readyFold = false, false }()
		f(t)
	})
}

// A fold ready long after the consumer's inactivity threshold: the watch consumed the
// delta right away and stopped consuming (deleting its consumer) until the fold was
// ready, then consumes from a new one, so the server's removal of idle consumers never
// meets it. With a threshold of 100 ms, the fold is ready after 1.5 s.
func TestFoldReadyAfterConsumerInactivity(t *testing.T) {
	restoreDirect := kv.SetDirectMaxSeqs(0)
	defer restoreDirect()
	restoreInactive := kv.SetConsumerInactive(100 * time.Millisecond)
	defer restoreInactive()
	e := newEnv(t, kv.BucketConfig{History: 1})
	for i := range 20 {
		e.put(t, fmt.Sprintf("k%02d", i), "0")
	}
	fold := syncFold(t, e, kv.All())
	for i := range 10 {
		e.put(t, fmt.Sprintf("k%02d", i), "1")
		e.put(t, fmt.Sprintf("new%02d", i), "1")
	}
	ready := make(chan struct{})
	w, err := e.b.Watch(e.ctx, kv.All(), kv.WatchOptions{Cursor: fold.cursor, Fold: fold, FoldFrozen: true, FoldReady: ready})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	time.Sleep(1500 * time.Millisecond) // the fold is being built
	close(ready)
	frozenFold = true
	defer func() { frozenFold = false }()
	got, _ := untilSynced(t, w, fold)
	if len(got) != 20 {
		t.Fatalf("resume delivered %d updates, want the 20-update delta", len(got))
	}
	e.put(t, "live", "1")
	if u := next(t, w); u.Key != "live" {
		t.Fatalf("live update %+v, want key live", u)
	}
}

// deltaEnv fills a bucket (history) with keys k00.. (n of them), syncs a fold of all
// keys, then rewrites the first delta keys: the fold's resume has a delta of delta
// updates, fetched by a consumer (no direct gets).
func deltaEnv(t *testing.T, history uint8, n, delta int) (*env, *mapFold) {
	t.Helper()
	t.Cleanup(kv.SetDirectMaxSeqs(0))
	e := newEnv(t, kv.BucketConfig{History: history})
	for i := range n {
		e.put(t, fmt.Sprintf("k%02d", i), "0")
	}
	fold := syncFold(t, e, kv.All())
	for i := range delta {
		e.put(t, fmt.Sprintf("k%02d", i), "1")
	}
	return e, fold
}

// expectPause returns a function that waits until a watch paused once more before its
// fold was ready (kv.Pauses): with the delta counted, or else with its buffer full.
func expectPause(t *testing.T, counted bool) func() {
	c0, f0 := kv.Pauses()
	return func() {
		t.Helper()
		eventually(t, "a pause before the fold was ready", func() bool {
			c, f := kv.Pauses()
			if counted {
				return c == c0+1 && f == f0
			}
			return f == f0+1 && c == c0
		})
	}
}

// watchGated resumes fold from its cursor with a buffer of buffer updates, handing the
// fold over (FoldReady) only when the returned gatedFold's ready is closed.
func watchGated(t *testing.T, e *env, scope kv.Scope, fold *mapFold, buffer int) (*kv.Watcher, *gatedFold) {
	t.Helper()
	gated := &gatedFold{mapFold: fold, t: t, ready: make(chan struct{})}
	w, err := e.b.Watch(e.ctx, scope, kv.WatchOptions{Cursor: fold.cursor, Fold: gated, FoldFrozen: true, FoldReady: gated.ready, Buffer: buffer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w, gated
}

// While the fold is being built (FoldReady open), the watch delivers the whole delta,
// and only OpSynced waits for the fold: the NATS side of the check overlaps the
// building. The fold is not read before it is ready (gatedFold).
func TestFoldReadyDeliversWhileBuilding(t *testing.T) {
	restoreDirect := kv.SetDirectMaxSeqs(0)
	defer restoreDirect()
	e := newEnv(t, kv.BucketConfig{History: 1})
	for i := range 50 {
		e.put(t, fmt.Sprintf("k.%02d", i), "0")
	}
	fold := syncFold(t, e, kv.Prefixes("k."))
	for i := range 30 {
		e.put(t, fmt.Sprintf("k.%02d", i), "1")
		e.put(t, fmt.Sprintf("other.%02d", i), "1") // out of scope
	}
	paused := expectPause(t, true)
	w, gated := watchGated(t, e, kv.Prefixes("k."), fold, 64)
	delta, _ := w.Next(e.ctx, nil, 30, testTimeout)
	if len(delta) != 30 {
		t.Fatalf("delivered %d updates before the fold was ready, want the 30-update delta", len(delta))
	}
	for i, u := range delta {
		if u.Op != kv.OpPut || u.Key != fmt.Sprintf("k.%02d", i) {
			t.Fatalf("update %d before the fold was ready: %+v", i, u)
		}
	}
	paused() // the stream is counted before the fold is ready
	if more, _ := w.Next(e.ctx, nil, 1, 100*time.Millisecond); len(more) != 0 {
		t.Fatalf("delivered %+v before the fold was ready", more)
	}
	last := streamInfo(t, e).State.LastSeq // an out-of-scope update
	close(gated.ready)
	synced := next(t, w)
	if synced.Op != kv.OpSynced || synced.Revision != last {
		t.Fatalf("after the fold was ready: %+v, want OpSynced at %d", synced, last)
	}
	e.put(t, "k.99", "live")
	if u := next(t, w); u.Key != "k.99" {
		t.Fatalf("live update %+v, want key k.99", u)
	}
}

// A delta larger than the watch's buffer, which nobody reads before the fold is ready:
// the watch stops consuming when the buffer is full (a handler that waited would miss
// heartbeats) and goes on from the next message once the fold is ready, with neither a
// gap nor a duplicate, even though the stopped consumer had sent more.
func TestFoldReadyPausesOnFullBuffer(t *testing.T) {
	e, fold := deltaEnv(t, 1, 50, 40)
	paused := expectPause(t, false)
	w, gated := watchGated(t, e, kv.All(), fold, 4)
	paused()
	time.Sleep(100 * time.Millisecond) // the stopped consumer's late messages arrive meanwhile
	close(gated.ready)
	frozenFold = true
	defer func() { frozenFold = false }()
	got, synced := untilSynced(t, w, fold)
	if len(got) != 40 {
		t.Fatalf("resume delivered %d updates, want the 40-update delta", len(got))
	}
	for i, u := range got {
		if u.Key != fmt.Sprintf("k%02d", i) || (i > 0 && u.Revision != got[i-1].Revision+1) {
			t.Fatalf("update %d: %+v after %+v", i, u, got[max(i-1, 0)])
		}
	}
	if synced.Revision != got[39].Revision {
		t.Fatalf("OpSynced at %d, want %d", synced.Revision, got[39].Revision)
	}
	e.put(t, "live", "1")
	if u := next(t, w); u.Key != "live" {
		t.Fatalf("live update %+v, want key live", u)
	}
}

// The delta is counted while the fold is being built, but what is written after the
// count and removed before the fold is ready (here a delete whose marker is purged) is
// never delivered: the count no longer holds, and the watch counts again once the fold is
// ready, which finds the key gone (ErrCursorExpired), instead of confirming the first
// count and going on without ever learning of the delete.
func TestFoldReadyRecountsAfterWritesDuringBuild(t *testing.T) {
	e, fold := deltaEnv(t, 5, 10, 5)
	paused := expectPause(t, true)
	w, gated := watchGated(t, e, kv.All(), fold, 64)
	paused()
	e.del(t, "k09") // the fold holds k09 live
	if err := e.b.PurgeDeletes(e.ctx, -1); err != nil {
		t.Fatal(err)
	}
	close(gated.ready)
	got, err := waitEnd(t, w)
	if !errors.Is(err, kv.ErrCursorExpired) {
		t.Fatalf("Err = %v after %+v, want ErrCursorExpired", err, got)
	}
}

// FoldReady is for a frozen fold resuming from a cursor.
func TestFoldReadyNeedsFrozenResume(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	ready := make(chan struct{})
	for _, opts := range []kv.WatchOptions{
		{FoldReady: ready},
		{Cursor: 1, Fold: newFold(), FoldReady: ready},
	} {
		if _, err := e.b.Watch(e.ctx, kv.All(), opts); !errors.Is(err, kv.ErrInvalidConfig) {
			t.Errorf("Watch(%+v) = %v, want ErrInvalidConfig", opts, err)
		}
	}
}

// A delta over the tracking cap falls back to the exact check, and still ends equal.
func TestResumeLargeDeltaOverTrackingCap(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		defer kv.SetMaxTrackedKeys(10)()
		if checks := resumeNewAndRewritten(t, 50); checks == 0 {
			t.Error("a delta over the tracking cap must fall back to the exact check")
		}
	})
}

// The cheap count check must count the delta's keys the fold does not hold, also when a
// frozen fold's keys are looked up at the end: new keys and rewritten ones verify without
// an exact check.
func TestResumeNewKeysCounted(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		if checks := resumeNewAndRewritten(t, 10); checks != 0 {
			t.Fatalf("resume ran %d exact checks: the count check miscounted the new keys", checks)
		}
	})
}

// resumeNewAndRewritten syncs a fold of 2n keys, writes n new keys and rewrites n old
// ones, resumes and checks the delta and the fold; it returns the exact checks the resume
// ran.
func resumeNewAndRewritten(t *testing.T, n int) int64 {
	e := newEnv(t, kv.BucketConfig{History: 1})
	for i := range 2 * n {
		e.put(t, fmt.Sprintf("old%03d", i), "0")
	}
	fold := syncFold(t, e, kv.All())
	for i := range n {
		e.put(t, fmt.Sprintf("old%03d", i), "1")
		e.put(t, fmt.Sprintf("new%03d", i), "1")
	}
	checks := kv.ExactChecks()
	w := resume(t, e, kv.All(), fold)
	got, _ := untilSynced(t, w, fold)
	if len(got) != 2*n {
		t.Fatalf("resume delivered %d updates, want the %d-update delta", len(got), 2*n)
	}
	if live := len(fold.live()); live != 3*n {
		t.Fatalf("fold has %d live keys after the resume, want %d", live, 3*n)
	}
	return kv.ExactChecks() - checks
}

func TestResumeUnderConcurrentWrites(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		e := newEnv(t, kv.BucketConfig{History: 1})
		for i := 0; i < 100; i++ {
			e.put(t, fmt.Sprintf("k%d", i), "0")
		}
		fold := syncFold(t, e, kv.All())
		for i := 0; i < 100; i++ {
			e.put(t, fmt.Sprintf("k%d", i), "1")
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := e.b.Put(e.ctx, fmt.Sprintf("k%d", i%150), []byte("w")); err != nil {
					t.Errorf("concurrent put: %v", err)
					return
				}
			}
		}()
		w := resume(t, e, kv.All(), fold)
		before, synced := untilSynced(t, w, fold)
		for _, u := range before {
			if u.Revision > synced.Revision {
				t.Fatalf("update at %d delivered before OpSynced at %d", u.Revision, synced.Revision)
			}
		}
		close(stop)
		<-done
		// Everything written is delivered after OpSynced in order; the fold converges.
		last := streamInfo(t, e).State.LastSeq
		for fold.cursor < last {
			u := next(t, w)
			if u.Revision <= synced.Revision {
				t.Fatalf("update at %d delivered after OpSynced at %d", u.Revision, synced.Revision)
			}
			fold.apply(u)
		}
		want := map[string]string{}
		for ent, err := range e.b.Scan(e.ctx, "") {
			if err != nil {
				t.Fatal(err)
			}
			want[ent.Key] = string(ent.Value)
		}
		got := fold.live()
		for k, v := range want {
			if got[k] != v {
				ent, _ := e.b.Entry(e.ctx, k)
				t.Errorf("fold diverged at %q: fold %q, bucket %q at revision %d (fold cursor %d, last %d)", k, got[k], v, ent.Revision, fold.cursor, last)
			}
		}
		if len(got) != len(want) {
			t.Errorf("fold has %d keys, bucket %d", len(got), len(want))
		}
		if err := w.Err(); err != nil {
			t.Fatal(err)
		}
	})
}
