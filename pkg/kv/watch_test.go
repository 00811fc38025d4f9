package kv_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

func TestWatchStateSyncThenLive(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{History: 5})
	e.put(t, "a", "1")
	e.put(t, "a", "2") // only the latest is synced
	e.put(t, "b", "1")
	e.put(t, "c", "1")
	last := e.del(t, "c")

	w, err := e.b.Watch(e.ctx, kv.All(), kv.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	got, synced := untilSynced(t, w, nil)
	if synced.Revision != last {
		t.Errorf("OpSynced revision = %d, want %d", synced.Revision, last)
	}
	want := []string{"a=put:2", "b=put:1", "c=delete:"}
	if len(got) != len(want) {
		t.Fatalf("sync delivered %d updates %v, want %v", len(got), got, want)
	}
	for i, u := range got {
		if s := fmt.Sprintf("%s=%s:%s", u.Key, u.Op, u.Value); s != want[i] {
			t.Errorf("update %d = %s, want %s", i, s, want[i])
		}
	}
	if got[len(got)-1].Pending != 0 {
		t.Errorf("last sync update pending = %d", got[len(got)-1].Pending)
	}
	rev := e.put(t, "d", "live")
	u := next(t, w)
	if u.Key != "d" || u.Op != kv.OpPut || u.Revision != rev || string(u.Value) != "live" || u.Created.IsZero() {
		t.Errorf("live update = %+v", u)
	}
	if _, err := e.b.Purge(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if u := next(t, w); u.Key != "a" || u.Op != kv.OpPurge {
		t.Errorf("purge update = %+v", u)
	}
	w.Stop()
	if _, err := waitEnd(t, w); err != nil {
		t.Errorf("Err after Stop = %v", err)
	}
}

func TestWatchEmptyBucketSyncsAtOnce(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	w, err := e.b.Watch(e.ctx, kv.All(), kv.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	got, synced := untilSynced(t, w, nil)
	if len(got) != 0 || synced.Revision != 0 {
		t.Fatalf("got %v, synced %+v", got, synced)
	}
	e.put(t, "x", "1")
	if u := next(t, w); u.Key != "x" {
		t.Fatalf("live update = %+v", u)
	}
}

func TestWatchPrefixes(t *testing.T) {
	for _, tc := range []struct {
		scope kv.Scope
		want  []string
	}{
		{kv.Prefixes("a."), []string{"a.1", "a.2"}},
		{kv.Prefixes("a.", "c."), []string{"a.1", "a.2", "c.1", "c.x.2"}},
		{kv.Prefixes("zz."), nil},
	} {
		t.Run(tc.scope.String(), func(t *testing.T) {
			e := newEnv(t, kv.BucketConfig{})
			for _, k := range []string{"a.1", "a.2", "ab.1", "b.1", "c.1", "c.x.2"} {
				e.put(t, k, "v")
			}
			w, err := e.b.Watch(e.ctx, tc.scope, kv.WatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			got, _ := untilSynced(t, w, nil)
			var keys []string
			for _, u := range got {
				keys = append(keys, u.Key)
			}
			if fmt.Sprint(keys) != fmt.Sprint(tc.want) {
				t.Fatalf("keys = %v, want %v", keys, tc.want)
			}
			// Live: out-of-scope writes are not delivered.
			e.put(t, "b.2", "v")
			rev := e.put(t, "a.3", "v")
			if tc.scope.Contains("a.3") {
				if u := next(t, w); u.Key != "a.3" || u.Revision != rev {
					t.Fatalf("live = %+v", u)
				}
			}
		})
	}
}

func TestWatchInvalidOptions(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	if _, err := e.b.Watch(e.ctx, kv.Prefixes("a"), kv.WatchOptions{}); !errors.Is(err, kv.ErrInvalidScope) {
		t.Errorf("bad scope: %v", err)
	}
	if _, err := e.b.Watch(e.ctx, kv.All(), kv.WatchOptions{Cursor: 3}); !errors.Is(err, kv.ErrInvalidConfig) {
		t.Errorf("cursor without fold: %v", err)
	}
}

func TestWatchCtxCancelEndsWithoutError(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	e.put(t, "a", "1")
	ctx, cancel := context.WithCancel(e.ctx)
	w, err := e.b.Watch(ctx, kv.All(), kv.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	untilSynced(t, w, nil)
	cancel()
	if _, err := waitEnd(t, w); err != nil {
		t.Fatalf("Err after cancel = %v", err)
	}
}

func TestWatchResumeDeliversOnlyDelta(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	fold := newFold()
	for i := 0; i < 10; i++ {
		e.put(t, fmt.Sprintf("k%d", i), "v")
	}
	w, err := e.b.Watch(e.ctx, kv.All(), kv.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	untilSynced(t, w, fold)
	w.Stop()
	cursor := fold.cursor

	e.put(t, "k1", "new")
	e.del(t, "k2")
	e.put(t, "k10", "v")
	w, err = e.b.Watch(e.ctx, kv.All(), kv.WatchOptions{Cursor: cursor, Fold: fold})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	got, synced := untilSynced(t, w, fold)
	if len(got) != 3 {
		t.Fatalf("delta = %v, want 3 updates", got)
	}
	if got[0].Revision != cursor+1 {
		t.Errorf("first delta revision %d, want %d", got[0].Revision, cursor+1)
	}
	if synced.Revision != cursor+3 {
		t.Errorf("synced at %d, want %d", synced.Revision, cursor+3)
	}
	live := fold.live()
	if live["k1"] != "new" || len(live) != 10 {
		t.Errorf("fold = %v", live)
	}
}

// Under concurrent writes the state sync still ends with one OpSynced whose revision
// splits the stream: everything before it is at or below, everything after above it
// (a fold's cursor never has to move backwards), and the fold converges to the bucket.
func TestWatchSyncUnderConcurrentWrites(t *testing.T) {
	for round := 0; round < 5; round++ {
		e := newEnv(t, kv.BucketConfig{History: 1})
		for i := 0; i < 200; i++ {
			e.put(t, fmt.Sprintf("k%d", i), "0")
		}
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := e.b.Put(e.ctx, fmt.Sprintf("k%d", i%250), []byte("w")); err != nil {
					t.Errorf("concurrent put: %v", err)
					return
				}
			}
		}()
		fold := newFold()
		w, err := e.b.Watch(e.ctx, kv.All(), kv.WatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before, synced := untilSynced(t, w, fold)
		for _, u := range before {
			if u.Revision > synced.Revision {
				t.Fatalf("update at %d delivered before OpSynced at %d", u.Revision, synced.Revision)
			}
		}
		close(stop)
		<-done
		last := streamInfo(t, e).State.LastSeq
		for fold.cursor < last {
			u := next(t, w)
			if u.Revision <= synced.Revision {
				t.Fatalf("update at %d delivered after OpSynced at %d", u.Revision, synced.Revision)
			}
			fold.apply(u)
		}
		w.Stop()
		got := fold.live()
		n := 0
		for ent, err := range e.b.Scan(e.ctx, "") {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if got[ent.Key] != string(ent.Value) {
				t.Fatalf("fold diverged at %q: %q vs bucket %q", ent.Key, got[ent.Key], ent.Value)
			}
		}
		if n != len(got) {
			t.Fatalf("fold has %d keys, bucket %d", len(got), n)
		}
	}
}
