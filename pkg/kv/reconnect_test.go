package kv_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// putRetry writes through a server restart: the client reconnects by itself.
func putRetry(t *testing.T, e *env, key, val string) uint64 {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		rev, err := e.b.Put(e.ctx, key, []byte(val))
		if err == nil {
			return rev
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %q through restart: %v", key, err)
		}
		time.Sleep(20 * time.Millisecond) // retry interval
	}
}

func TestWatchPlainSurvivesServerRestart(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	e.put(t, "seed", "0")
	w, err := e.b.Watch(e.ctx, kv.All(), kv.WatchOptions{Buffer: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	_, synced := untilSynced(t, w, nil)
	last := synced.Revision

	// Some updates the watcher has not read yet, a restart, then more updates.
	// Far more than the consumer's pull batch, so most are still on the server.
	fill(t, e.conn, e.b.Name(), "before.%d", 2000, 64)
	e.srv.Restart(t)
	for i := 0; i < 50; i++ {
		putRetry(t, e, fmt.Sprintf("after.%d", i), "v")
	}
	seen := map[string]bool{}
	for len(seen) < 2050 {
		u := next(t, w)
		if u.Revision != last+1 {
			t.Fatalf("revision %d after %d: loss or duplicate across the restart", u.Revision, last)
		}
		last = u.Revision
		if seen[u.Key] {
			t.Fatalf("duplicate %q", u.Key)
		}
		seen[u.Key] = true
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err = %v", err)
	}
	eventually(t, "reconnect counted", func() bool { return e.conn.Status().Reconnects >= 1 })
}

func TestWatchVerifiedEndsInterruptedOnRestart(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	e.put(t, "a", "1")
	fold := syncFold(t, e, kv.All())
	w := resume(t, e, kv.All(), fold)
	untilSynced(t, w, fold)
	e.srv.Restart(t)
	if _, err := waitEnd(t, w); !errors.Is(err, kv.ErrWatchInterrupted) {
		t.Fatalf("Err = %v, want ErrWatchInterrupted", err)
	}
	// The caller re-watches from its applied cursor once the connection is back.
	eventually(t, "reconnect", e.conn.Connected)
	putRetry(t, e, "b", "1")
	w = resume(t, e, kv.All(), fold)
	got, _ := untilSynced(t, w, fold)
	if len(got) != 1 || got[0].Key != "b" {
		t.Fatalf("re-watch delta = %v", got)
	}
}

// A plain watch that reconnects after the messages it had not received yet were evicted
// cannot prove it lost nothing: it ends with ErrWatchInterrupted instead of silently
// continuing at the stream's first sequence.
func TestWatchPlainInterruptedWhenGapEvicted(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{MaxAge: time.Second})
	w, err := e.b.Watch(e.ctx, kv.All(), kv.WatchOptions{Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	untilSynced(t, w, nil)
	// Far more than the consumer pulls at once: most stay on the server, undelivered,
	// while the watcher's reader is not reading.
	fill(t, e.conn, e.b.Name(), "k.%d", 3000, 16)
	eventually(t, "messages to age out", func() bool { return streamInfo(t, e).State.Msgs == 0 })
	e.srv.Restart(t)
	// Many writes after the gap: the new consumer delivers them until it is stopped, and
	// none may reach Updates (a fold would apply them and skip the gap: found by the
	// fault suite's dead-peer partition, test/faults).
	for i := range 200 {
		putRetry(t, e, fmt.Sprintf("after.%d", i), "1")
	}
	got, err := waitEnd(t, w)
	if !errors.Is(err, kv.ErrWatchInterrupted) {
		t.Fatalf("Err = %v after %d updates, want ErrWatchInterrupted", err, len(got))
	}
	if !strings.Contains(err.Error(), "evicted") {
		t.Errorf("interrupted for another reason: %v", err)
	}
	if len(got) >= 3000 {
		t.Fatalf("delivered %d updates: the gap was not evicted before delivery", len(got))
	}
	for i, u := range got {
		if strings.HasPrefix(u.Key, "after.") || i > 0 && u.Revision != got[i-1].Revision+1 {
			t.Fatalf("update %d (%q rev %d) delivered across the evicted gap", i, u.Key, u.Revision)
		}
	}
}

func TestWatchEndsWhenConnClosed(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	e.put(t, "a", "1")
	for name, opts := range map[string]kv.WatchOptions{"plain": {}, "verified": {Fold: newFold()}} {
		t.Run(name, func(t *testing.T) {
			c := connect(t, e.srv)
			b, err := c.Bucket(e.ctx, e.b.Name())
			if err != nil {
				t.Fatal(err)
			}
			w, err := b.Watch(e.ctx, kv.All(), opts)
			if err != nil {
				t.Fatal(err)
			}
			untilSynced(t, w, nil)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = waitEnd(t, w)
			t.Logf("ended with: %v", err)
			if !errors.Is(err, kv.ErrClosed) && !errors.Is(err, kv.ErrWatchInterrupted) {
				t.Fatalf("Err = %v, want ErrClosed or ErrWatchInterrupted", err)
			}
		})
	}
}

// Restarts counts the consumer resets a plain watch resumed after (a resumed state sync
// is no longer last-per-key, which the fold loop must know); none before the first.
func TestWatchPlainCountsRestarts(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	e.put(t, "a", "1")
	w, err := e.b.Watch(e.ctx, kv.All(), kv.WatchOptions{Buffer: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	untilSynced(t, w, nil)
	if n := w.Restarts(); n != 0 {
		t.Fatalf("Restarts = %d before any reset", n)
	}
	// Delete the consumer under the watch: the ordered consumer recreates it from the last
	// delivered sequence + 1.
	stream, err := e.conn.JetStream().Stream(e.ctx, e.b.Stream())
	if err != nil {
		t.Fatal(err)
	}
	names := stream.ConsumerNames(e.ctx)
	for name := range names.Name() {
		if err := stream.DeleteConsumer(e.ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	rev := e.put(t, "b", "2")
	if u := next(t, w); u.Key != "b" || u.Revision != rev {
		t.Fatalf("after the reset got %s@%d, want b@%d", u.Key, u.Revision, rev)
	}
	if n := w.Restarts(); n != 1 {
		t.Fatalf("Restarts = %d after one reset, want 1", n)
	}
}
