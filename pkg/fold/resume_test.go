package fold_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// resumeFixture: a fold caught up with 50 keys, closed and reopened, and a delta of 20
// updates written since (10 new keys, 10 rewrites).
func resumeFixture(t *testing.T) (*fixture, fold.Store) {
	t.Helper()
	f := newFixture(t, kv.BucketConfig{History: 1})
	for i := range 50 {
		f.put(fmt.Sprintf("k%02d", i), "0")
	}
	dir := t.TempDir()
	foldAndClose(t, f, dir)
	for i := range 10 {
		f.put(fmt.Sprintf("k%02d", i), "1")
		f.put(fmt.Sprintf("new%02d", i), "1")
	}
	store := openMemory(t, dir)
	t.Cleanup(func() { _ = store.Close() })
	return f, store
}

// runResumed runs a loop over store given r until the fold equals the bucket, then until
// it has a live update as well, and returns the updates it applied (without the live
// one) and the watches it started itself.
func runResumed(t *testing.T, f *fixture, store fold.Store, r *fold.Resume) (applied int, watches int64) {
	t.Helper()
	rec := &recorder{}
	l := fold.NewLoop(f.bucket, store, fold.LoopConfig{Observer: rec, Resume: r})
	run := start(l)
	waitUntil(t, "synced", func() bool { return rec.count(fold.EventSynced) == 1 }, rec)
	waitEqual(t, func() fold.Store { return store }, func() map[string]val { return f.bucketState(kv.All()) })
	applied = rec.appliedCount()
	f.put("live", "1")
	waitEqual(t, func() fold.Store { return store }, func() map[string]val { return f.bucketState(kv.All()) })
	if _, err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	return applied, l.WatchesStarted()
}

// A loop given a verified Resume continues its watch: the delta is applied once, from
// what the verification delivered, and no second watch fetches it again.
func TestResumeHandedToLoop(t *testing.T) {
	f, store := resumeFixture(t)
	r, err := fold.VerifyResume(context.Background(), f.bucket, kv.All(), store, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	applied, watches := runResumed(t, f, store, r)
	if applied != 20 {
		t.Fatalf("applied %d updates, want the 20-update delta", applied)
	}
	if watches != 0 {
		t.Fatalf("the loop started %d watches: the verified resume was not continued", watches)
	}
}

// A Resume verified for another state of the store is not continued: the loop watches
// from its own cursor (here a resync) and still converges.
func TestResumeForAnotherStateIsStopped(t *testing.T) {
	f, store := resumeFixture(t)
	r, err := fold.VerifyResume(context.Background(), f.bucket, kv.All(), store, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Apply(nil, fold.State{Cursor: store.State().Cursor, Resyncing: true}); err != nil {
		t.Fatal(err)
	}
	_, watches := runResumed(t, f, store, r)
	if watches != 1 {
		t.Fatalf("the loop started %d watches, want its own one", watches)
	}
}

// A delta too large to keep leaves a Resume with only the verdict: the loop fetches the
// delta itself.
func TestResumeOverDeltaCapIsRefetched(t *testing.T) {
	defer fold.SetMaxResumeDelta(fold.SetMaxResumeDelta(10))
	f, store := resumeFixture(t)
	r, err := fold.VerifyResume(context.Background(), f.bucket, kv.All(), store, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	applied, watches := runResumed(t, f, store, r)
	if applied != 20 || watches != 1 {
		t.Fatalf("applied %d updates with %d watches, want the 20-update delta from one watch of its own", applied, watches)
	}
}

// VerifyResume reports a cursor NATS cannot continue from.
func TestVerifyResumeExpired(t *testing.T) {
	f, store := resumeFixture(t)
	f.del("k20")
	if err := f.bucket.PurgeDeletes(context.Background(), -1); err != nil {
		t.Fatalf("purge deletes: %v", err)
	}
	_, err := fold.VerifyResume(context.Background(), f.bucket, kv.All(), store, waitFor)
	if !errors.Is(err, kv.ErrCursorExpired) {
		t.Fatalf("VerifyResume = %v, want ErrCursorExpired", err)
	}
}
