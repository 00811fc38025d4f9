package fold_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// verifiers are the two ways to a verified Resume of a store: VerifyResume, and a
// PendingResume started before the store is handed over (as seeding starts it when an
// export's header is read).
var verifiers = []struct {
	name   string
	verify func(f *fixture, s fold.Store) (*fold.Resume, error)
}{
	{"VerifyResume", func(f *fixture, s fold.Store) (*fold.Resume, error) {
		return fold.VerifyResume(context.Background(), f.bucket, kv.All(), s, waitFor)
	}},
	{"PendingResume", func(f *fixture, s fold.Store) (*fold.Resume, error) {
		p := fold.StartVerifyResume(context.Background(), f.bucket, kv.All(), s.State().Cursor)
		return p.Finish(context.Background(), s, waitFor)
	}},
}

// A loop given a verified Resume continues its watch: the delta is applied once, from
// what the verification delivered, and no second watch fetches it again.
func TestResumeHandedToLoop(t *testing.T) {
	for _, v := range verifiers {
		t.Run(v.name, func(t *testing.T) {
			f, store := resumeFixture(t)
			r, err := v.verify(f, store)
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
		})
	}
}

// Finish refuses a store at another cursor than the one the watch started from.
func TestPendingResumeOtherCursor(t *testing.T) {
	f, store := resumeFixture(t)
	p := fold.StartVerifyResume(context.Background(), f.bucket, kv.All(), store.State().Cursor-1)
	if r, err := p.Finish(context.Background(), store, waitFor); err == nil {
		r.Stop()
		t.Fatal("Finish accepted a store at another cursor")
	}
	p = fold.StartVerifyResume(context.Background(), f.bucket, kv.All(), store.State().Cursor)
	p.Abort() // a staging that failed: the watch stops
}

// priorStore records the Prior of every mutation applied to the store it wraps.
type priorStore struct {
	fold.Store
	mu     sync.Mutex
	priors map[string][]fold.Prior
}

func (s *priorStore) Apply(muts []fold.Mutation, st fold.State) error {
	s.mu.Lock()
	for _, m := range muts {
		s.priors[m.Key] = append(s.priors[m.Key], m.Prior)
	}
	s.mu.Unlock()
	return s.Store.Apply(muts, st)
}

// What the verification's lookups found reaches the store with each delta key's first
// mutation (Mutation.Prior), so a store need not read those entries again; later
// mutations, and keys after the delta, carry none.
func TestResumePriorsReachTheStore(t *testing.T) {
	for _, v := range verifiers {
		t.Run(v.name, func(t *testing.T) {
			f, inner := resumeFixture(t)
			r, err := v.verify(f, inner)
			if err != nil {
				t.Fatal(err)
			}
			store := &priorStore{Store: inner, priors: map[string][]fold.Prior{}}
			f.put("k00", "2") // after the verified delta: k00's second mutation knows nothing
			runResumed(t, f, store, r)
			store.mu.Lock()
			defer store.mu.Unlock()
			for i := range 10 {
				rewritten, added := fmt.Sprintf("k%02d", i), fmt.Sprintf("new%02d", i)
				if got, want := store.priors[rewritten][0], (fold.Prior{Known: true, Exists: true, Live: true, ValueLen: 1}); got != want {
					t.Errorf("first mutation of %s: prior %+v, want %+v", rewritten, got, want)
				}
				if got := store.priors[added][0]; got != fold.Absent {
					t.Errorf("first mutation of %s: prior %+v, want fold.Absent", added, got)
				}
			}
			if ps := store.priors["k00"]; len(ps) != 2 || ps[1].Known {
				t.Errorf("k00's mutations carried priors %+v, want a known one then an unknown one", ps)
			}
			if ps := store.priors["live"]; len(ps) != 1 || ps[0].Known {
				t.Errorf("the live key's mutation carried priors %+v, want one unknown", ps)
			}
		})
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
