package export

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/pebble"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// natsFixture is a bucket on an embedded nats-server plus a file:// export location.
type natsFixture struct {
	t      *testing.T
	bucket *kv.Bucket
	loc    *Location
}

func newNATSFixture(t *testing.T) *natsFixture {
	t.Helper()
	srv := natstest.Start(t)
	ctx := context.Background()
	conn, err := kv.Connect(ctx, kv.Options{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	b, err := conn.CreateBucket(ctx, kv.BucketConfig{Name: "orders"})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	l := fileLocation(t)
	t.Cleanup(func() { l.Close() })
	return &natsFixture{t: t, bucket: b, loc: l}
}

func (f *natsFixture) put(key, value string) uint64 {
	f.t.Helper()
	rev, err := f.bucket.Put(context.Background(), key, []byte(value))
	if err != nil {
		f.t.Fatalf("put %s: %v", key, err)
	}
	return rev
}

func (f *natsFixture) del(key string) uint64 {
	f.t.Helper()
	rev, err := f.bucket.Delete(context.Background(), key)
	if err != nil {
		f.t.Fatalf("delete %s: %v", key, err)
	}
	return rev
}

// counter is a fold.Observer counting the data updates the loop received.
type counter struct {
	mu      sync.Mutex
	updates int
	minRev  uint64
	events  []fold.Event
	cursor  uint64
}

func (c *counter) Applied(p fold.Progress, batch []kv.Update) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updates += len(batch)
	for _, u := range batch {
		if c.minRev == 0 || u.Revision < c.minRev {
			c.minRev = u.Revision
		}
	}
	c.cursor = p.State.Cursor
}

func (c *counter) Event(e fold.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *counter) snapshot() (updates int, minRev, cursor uint64, events []fold.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.updates, c.minRev, c.cursor, append([]fold.Event(nil), c.events...)
}

// runLoop runs a fold.Loop until the test ends; it returns the loop.
func runLoop(t *testing.T, b *kv.Bucket, st fold.Store, cfg fold.LoopConfig) *fold.Loop {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := fold.NewLoop(b, st, cfg)
	done := make(chan error, 1)
	go func() { _, err := l.Run(ctx); done <- err }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loop: %v", err)
		}
		l.Store().Close()
	})
	return l
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// exportFold folds the bucket from scratch (a loop on a fresh store) up to rev and
// uploads an export of it.
func (f *natsFixture) exportAt(rev uint64) Object {
	f.t.Helper()
	st, err := openMemory(filepath.Join(f.t.TempDir(), "exporter"))
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := fold.NewLoop(f.bucket, st, fold.LoopConfig{Scope: suiteScope})
	done := make(chan struct{})
	go func() { defer close(done); _, _ = l.Run(ctx) }()
	eventually(f.t, fmt.Sprintf("exporter fold at %d", rev), func() bool { return st.State().Cursor >= rev })
	cancel()
	<-done
	defer st.Close()
	snap, err := st.Snapshot()
	if err != nil {
		f.t.Fatal(err)
	}
	defer snap.Close()
	o, _, err := f.loc.Upload(context.Background(), snap, suiteMeta())
	if err != nil {
		f.t.Fatalf("upload: %v", err)
	}
	return o
}

// TestBootstrapDeltaOnly: a new node seeded from an export receives from NATS exactly the
// tail after the export's cursor (a full replay would deliver every key again).
func TestBootstrapDeltaOnly(t *testing.T) {
	f := newNATSFixture(t)
	var last uint64
	for i := range 300 {
		last = f.put(fmt.Sprintf("k.%03d", i), "v0")
	}
	for i := 0; i < 300; i += 7 {
		last = f.del(fmt.Sprintf("k.%03d", i))
	}
	f.put("other.x", "out of scope")
	obj := f.exportAt(last)

	const tail = 250
	for i := range tail {
		switch {
		case i%10 == 9:
			last = f.del(fmt.Sprintf("k.%03d", i))
		case i%2 == 0:
			last = f.put(fmt.Sprintf("k.%03d", i), "v1")
		default:
			last = f.put(fmt.Sprintf("k.new.%03d", i), "v1")
		}
	}

	dir := filepath.Join(t.TempDir(), "node-b", "fold")
	var staged *lookupCounter
	open := func(dir string) (fold.Store, error) {
		st, err := pebble.Open(dir, pebble.Options{})
		staged = &lookupCounter{Store: st}
		return staged, err
	}
	s, err := NewSeeder(SeedConfig{Location: f.loc, Bucket: "orders", Scope: suiteScope, KV: f.bucket, Dir: dir, Open: open})
	if err != nil {
		t.Fatal(err)
	}
	st, res, err := s.Seed(context.Background(), nil)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	// The check looked the delta's keys up in the index of the staged keys, not in the
	// store (each such lookup loads a table block).
	if n := staged.lookups.Load(); n != 0 {
		t.Errorf("the check made %d lookups in the staged store", n)
	}
	if res.Object.Key != obj.Key || st.State().Cursor != obj.Cursor {
		t.Fatalf("seeded from %s at %d, want %s at %d", res.Object.Key, st.State().Cursor, obj.Key, obj.Cursor)
	}
	if res.Resume == nil || res.Resume.Cursor() != obj.Cursor {
		t.Fatalf("seed returned resume %+v, want the verified watch from %d", res.Resume, obj.Cursor)
	}
	c := &counter{}
	l := runLoop(t, f.bucket, st, fold.LoopConfig{Scope: suiteScope, Observer: c, Resume: res.Resume})
	eventually(t, "node b caught up", func() bool { _, _, cur, _ := c.snapshot(); return cur >= last })
	if n := l.WatchesStarted(); n != 0 {
		t.Errorf("the loop started %d watches: the tail was fetched again, not continued from the seed's check", n)
	}

	updates, minRev, _, _ := c.snapshot()
	if updates != tail {
		t.Errorf("the seeded node received %d updates from NATS, want exactly the tail of %d", updates, tail)
	}
	if minRev <= obj.Cursor {
		t.Errorf("the seeded node received revision %d, at or before the export's cursor %d", minRev, obj.Cursor)
	}
	assertFoldEqualsBucket(t, f.bucket, st)
}

// lookupCounter is a pebble store that counts Lookup calls (BulkLoad and Relocate stay
// visible: the staging path uses them).
type lookupCounter struct {
	*pebble.Store
	lookups atomic.Int64
}

func (c *lookupCounter) Lookup(key string) (fold.Entry, bool, error) {
	c.lookups.Add(1)
	return c.Store.Lookup(key)
}

// assertFoldEqualsBucket compares the live keys of a fold with the bucket (within scope),
// and the fold's counts with them (the tail's mutations carried the check's priors: a
// wrong one skews the counts).
func assertFoldEqualsBucket(t *testing.T, b *kv.Bucket, st fold.Reader) {
	t.Helper()
	want := map[string]string{}
	for e, err := range b.Scan(context.Background(), "") {
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		if e.Op == kv.OpPut && suiteScope.Contains(e.Key) {
			want[e.Key] = string(e.Value)
		}
	}
	got := map[string]string{}
	var bytes uint64
	for e, err := range st.Range("", false) {
		if err != nil {
			t.Fatalf("range: %v", err)
		}
		got[e.Key] = string(e.Value)
		bytes += uint64(len(e.Key) + len(e.Value))
	}
	if len(got) != len(want) {
		t.Fatalf("fold has %d live keys, bucket %d", len(got), len(want))
	}
	if stats, err := st.Stats(); err != nil || stats.Live != uint64(len(got)) || stats.LiveBytes != bytes {
		t.Fatalf("fold counts %d live keys of %d bytes (%v), holds %d of %d", stats.Live, stats.LiveBytes, err, len(got), bytes)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %s: fold %q, bucket %q", k, got[k], v)
		}
	}
}

// expiredSetup makes two exports: an older one NATS can continue from, and a newer one
// holding a key whose delete marker was purged since (NATS cannot continue from it).
func expiredSetup(t *testing.T) (f *natsFixture, older, newer Object) {
	f = newNATSFixture(t)
	var last uint64
	for i := range 50 {
		last = f.put(fmt.Sprintf("k.%02d", i), "v")
	}
	older = f.exportAt(last)
	last = f.put("k.doomed", "v")
	newer = f.exportAt(last)
	f.del("k.doomed")
	if err := f.bucket.PurgeDeletes(context.Background(), -1); err != nil {
		t.Fatal(err)
	}
	f.put("k.after", "v")
	return f, older, newer
}

// TestSeedSkipsExportNATSCannotContinue: the newest export is rejected with
// kv.ErrCursorExpired and the next one is used.
func TestSeedSkipsExportNATSCannotContinue(t *testing.T) {
	f, older, newer := expiredSetup(t)
	dir := filepath.Join(t.TempDir(), "fold")
	s, err := NewSeeder(SeedConfig{Location: f.loc, Bucket: "orders", Scope: suiteScope, KV: f.bucket, Dir: dir, Open: openMemory})
	if err != nil {
		t.Fatal(err)
	}
	st, res, err := s.Seed(context.Background(), nil)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	defer st.Close()
	defer res.Resume.Stop()
	if res.Object.Key != older.Key {
		t.Fatalf("seeded from %s, want the older export %s", res.Object.Key, older.Key)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Object.Key != newer.Key || !errors.Is(res.Rejected[0].Err, kv.ErrCursorExpired) {
		t.Fatalf("rejected %+v, want the newer export with ErrCursorExpired", res.Rejected)
	}
}

// TestReseederInLoop: a fold whose cursor expired is reseeded by the loop through the
// Reseeder, from the export NATS can continue from, and converges.
func TestReseederInLoop(t *testing.T) {
	f, older, newer := expiredSetup(t)
	dir := filepath.Join(t.TempDir(), "fold")
	// The node's fold is at the newer export's cursor (imported without a resume check).
	r, err := f.loc.Reader(context.Background(), newer)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := Import(context.Background(), r, StagingDir(dir), dir, StageOptions{Expect: ExpectFold("orders", suiteScope), Open: openMemory})
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := NewReseeder(SeedConfig{Location: f.loc, Bucket: "orders", Scope: suiteScope, KV: f.bucket, Dir: dir, Open: openMemory})
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	l := runLoop(t, f.bucket, st, fold.LoopConfig{Scope: suiteScope, Observer: c, Reseed: rs})
	seeded := func() (fold.Event, bool) {
		_, _, _, evs := c.snapshot()
		for _, e := range evs {
			if e.Kind == fold.EventSeeded {
				return e, true
			}
		}
		return fold.Event{}, false
	}
	eventually(t, "reseed", func() bool { _, ok := seeded(); return ok })
	e, _ := seeded()
	if want := f.loc.String() + "/" + older.Key; e.Source != want {
		t.Errorf("seeded from %q, want %q", e.Source, want)
	}
	eventually(t, "fold has k.after", func() bool { _, ok, _ := l.Store().Get("k.after"); return ok })
	if _, ok, _ := l.Store().Lookup("k.doomed"); ok {
		t.Error("k.doomed survived the reseed")
	}
	// The watch that found the cursor expired; the reseed's verified watch is continued.
	if n := l.WatchesStarted(); n != 1 {
		t.Errorf("the loop started %d watches, want 1 (the reseed's check continued)", n)
	}
}

// TestReseederSwapFailureInLoop: when the swap into place fails after the old store was
// closed, the loop goes on with the old fold reopened (a full resync) instead of stopping
// on the closed store, and converges.
func TestReseederSwapFailureInLoop(t *testing.T) {
	f, _, newer := expiredSetup(t)
	dir := filepath.Join(t.TempDir(), "fold")
	r, err := f.loc.Reader(context.Background(), newer)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := Import(context.Background(), r, StagingDir(dir), dir, StageOptions{Expect: ExpectFold("orders", suiteScope), Open: openMemory})
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := NewReseeder(SeedConfig{Location: f.loc, Bucket: "orders", Scope: suiteScope, KV: f.bucket, Dir: dir, Open: openMemory})
	if err != nil {
		t.Fatal(err)
	}
	failSwaps(t)
	c := &counter{}
	l := runLoop(t, f.bucket, st, fold.LoopConfig{Scope: suiteScope, Observer: c, Reseed: rs})
	eventually(t, "the loop goes on with the reopened fold", func() bool { return l.Store() != st })
	if _, _, err := st.Get("k.after"); !errors.Is(err, fold.ErrClosed) {
		t.Fatalf("the Reseeder did not close the old store (%v): the failure path was not taken", err)
	}
	eventually(t, "fold has k.after", func() bool { _, ok, _ := l.Store().Get("k.after"); return ok })
	eventually(t, "full resync removes k.doomed", func() bool {
		_, ok, err := l.Store().Lookup("k.doomed")
		return !ok && err == nil && !l.Store().State().Resyncing
	})
	_, _, _, evs := c.snapshot()
	for _, e := range evs {
		if e.Kind == fold.EventSeeded {
			t.Fatalf("seeded event %+v although every swap failed", e)
		}
	}
}
