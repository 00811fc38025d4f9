package export

import (
	"bytes"
	"context"
	"errors"
	"io"
	"iter"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// runTransportSuite is the conformance suite every export location passes (file://
// always, a real S3 server in s3_test.go). open returns a fresh, empty location.
func runTransportSuite(t *testing.T, open func(t *testing.T) *Location) {
	tests := []struct {
		name string
		fn   func(t *testing.T, l *Location)
	}{
		{"UploadListRead", testUploadListRead},
		{"NewestIsHighestCursor", testNewestIsHighestCursor},
		{"FailedUploadInvisible", testFailedUploadInvisible},
		{"CreateOnly", testCreateOnly},
		{"ForeignNamesIgnored", testForeignNamesIgnored},
		{"Retention", testRetention},
		{"SeedSkipsBadCandidates", testSeedSkipsBadCandidates},
		{"SeedNoneUsable", testSeedNoneUsable},
		{"SeedNamedObject", testSeedNamedObject},
		{"Missing", testMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := open(t)
			t.Cleanup(func() { l.Close() })
			tc.fn(t, l)
		})
	}
}

var suiteScope = kv.Prefixes("k.")

func suiteMeta() Meta { return Meta{Bucket: "orders", Scope: suiteScope, Backend: "test"} }

func upload(t *testing.T, l *Location, cursor uint64, created time.Time, entries ...fold.Entry) Object {
	t.Helper()
	if len(entries) == 0 {
		entries = []fold.Entry{live("k.a", "1", 1)}
	}
	m := suiteMeta()
	m.Created = created
	o, _, err := l.Upload(context.Background(), newSliceFold(cursor, entries...), m)
	if err != nil {
		t.Fatalf("upload at cursor %d: %v", cursor, err)
	}
	return o
}

func cursors(objs []Object) []uint64 {
	var out []uint64
	for _, o := range objs {
		out = append(out, o.Cursor)
	}
	return out
}

func testUploadListRead(t *testing.T, l *Location) {
	ctx := context.Background()
	src := newSliceFold(4000, genEntries(3000, 100)...)
	o, sum, err := l.Upload(ctx, src, suiteMeta())
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if o.Cursor != 4000 || o.Bucket != "orders" || o.Size != sum.Bytes || sum.Header.Count() != 3000 {
		t.Fatalf("object %+v, summary %+v", o, sum)
	}
	ls, err := l.List(ctx, "orders")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(ls.Exports) != 1 || ls.Exports[0].Key != o.Key || len(ls.Ignored) != 0 {
		t.Fatalf("listing %+v, want just %s", ls, o.Key)
	}
	r, err := l.Reader(ctx, o)
	if err != nil {
		t.Fatalf("reader: %v", err)
	}
	defer r.Close()
	got, err := Verify(r, ExpectFold("orders", suiteScope))
	if err != nil {
		t.Fatalf("verify downloaded export: %v", err)
	}
	if got.Checksum != sum.Checksum || got.Bytes != sum.Bytes {
		t.Fatalf("downloaded %+v, uploaded %+v", got, sum)
	}
	if _, err := l.Stat(ctx, o.Key); err != nil {
		t.Fatalf("stat: %v", err)
	}
}

// testNewestIsHighestCursor: a slow exporter that finishes last with an older cursor does
// not become the newest export.
func testNewestIsHighestCursor(t *testing.T, l *Location) {
	t0 := time.Now()
	upload(t, l, 200, t0)
	upload(t, l, 100, t0.Add(time.Second)) // started later, older cursor, finished last
	upload(t, l, 150, t0.Add(-time.Second))
	n, err := l.Newest(context.Background(), "orders")
	if err != nil || n.Cursor != 200 {
		t.Fatalf("newest = %+v, %v; want cursor 200", n, err)
	}
	ls, _ := l.List(context.Background(), "orders")
	if got := cursors(ls.Exports); !slices.Equal(got, []uint64{200, 150, 100}) {
		t.Fatalf("listing order %v", got)
	}
}

// failingFold fails its Range after some entries: the upload must leave nothing visible.
type failingFold struct {
	*sliceFold
	after int
}

var errDisk = errors.New("disk on fire")

func (f failingFold) Range(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	return func(yield func(fold.Entry, error) bool) {
		i := 0
		for e, err := range f.sliceFold.Range(prefix, tombstones) {
			if i == f.after {
				yield(fold.Entry{}, errDisk)
				return
			}
			i++
			if !yield(e, err) {
				return
			}
		}
	}
}

func testFailedUploadInvisible(t *testing.T, l *Location) {
	ctx := context.Background()
	// Large enough that some frames have been handed to the store before the failure.
	src := failingFold{newSliceFold(9000, genEntries(8000, 1000)...), 7000}
	_, _, err := l.Upload(ctx, src, suiteMeta())
	if !errors.Is(err, errDisk) {
		t.Fatalf("upload = %v, want the fold's error", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := l.Upload(cancelled, newSliceFold(10, live("k.a", "1", 1)), suiteMeta()); err == nil {
		t.Fatal("upload with a cancelled context succeeded")
	}
	ls, err := l.List(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Exports) != 0 || len(ls.Ignored) != 0 || len(ls.Temp) != 0 {
		t.Fatalf("failed uploads left objects: %+v", ls)
	}
}

func testCreateOnly(t *testing.T, l *Location) {
	ctx := context.Background()
	key, _ := objectKey("orders", 7, time.Now())
	first := newSliceFold(7, live("k.first", "1", 1))
	if _, _, err := l.uploadKey(ctx, key, first, suiteMeta()); err != nil {
		t.Fatal(err)
	}
	_, _, err := l.uploadKey(ctx, key, newSliceFold(7, live("k.second", "2", 2)), suiteMeta())
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second upload to %s = %v, want ErrExists", key, err)
	}
	o, _ := ParseKey(key)
	r, err := l.Reader(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, _, err := readAllReader(r)
	if err != nil || len(got) != 1 || got[0].Key != "k.first" {
		t.Fatalf("object after refused overwrite: %v, %v", got, err)
	}
}

func readAllReader(r io.Reader) ([]fold.Entry, Summary, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, Summary{}, err
	}
	return readAll(data, Expect{})
}

func put(t *testing.T, l *Location, key string, data []byte) {
	t.Helper()
	if err := l.b.WriteAll(context.Background(), key, data, nil); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func testForeignNamesIgnored(t *testing.T, l *Location) {
	good := upload(t, l, 50, time.Now())
	put(t, l, "orders/README.md", []byte("hello"))
	put(t, l, "orders/00000000000000000099-xx.slex", []byte("nope"))
	put(t, l, "orders/nested/00000000000000000099-0000000000000000001-0123456789abcdef.slex", []byte("nope"))
	put(t, l, "other/00000000000000000099-0000000000000000001-0123456789abcdef.slex", []byte("other bucket"))
	put(t, l, "ordersx/00000000000000000099-0000000000000000001-0123456789abcdef.slex", []byte("prefix lookalike"))
	ls, err := l.List(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Exports) != 1 || ls.Exports[0].Key != good.Key {
		t.Fatalf("exports %+v, want only %s", ls.Exports, good.Key)
	}
	if len(ls.Ignored) < 2 {
		t.Fatalf("ignored %v, want the foreign names reported", ls.Ignored)
	}
}

func testRetention(t *testing.T, l *Location) {
	ctx := context.Background()
	old := time.Now().Add(-3 * time.Hour)
	for c := uint64(1); c <= 5; c++ {
		upload(t, l, c*10, old)
	}
	put(t, l, "orders/notes.txt", []byte("not ours"))
	// A grace period longer than the exports' age protects... nothing here: the objects'
	// ModTime is now (just uploaded), so a grace of an hour protects all of them.
	del, err := l.Prune(ctx, "orders", Retention{Keep: 2, Grace: time.Hour}, time.Now())
	if err != nil || len(del) != 0 {
		t.Fatalf("prune within grace deleted %v, %v", cursors(del), err)
	}
	del, err = l.Prune(ctx, "orders", Retention{Keep: 2}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := cursors(del); !slices.Equal(got, []uint64{30, 20, 10}) {
		t.Fatalf("deleted %v, want [30 20 10]", got)
	}
	ls, _ := l.List(ctx, "orders")
	if got := cursors(ls.Exports); !slices.Equal(got, []uint64{50, 40}) || len(ls.Ignored) != 1 {
		t.Fatalf("left %v, ignored %v", got, ls.Ignored)
	}
	// Keep 0 still keeps the newest.
	del, _ = l.Prune(ctx, "orders", Retention{Keep: 0}, time.Now().Add(time.Hour))
	if got := cursors(del); !slices.Equal(got, []uint64{40}) {
		t.Fatalf("keep 0 deleted %v, want [40]", got)
	}
}

// badExports returns damaged variants of a valid export (each with a valid name).
func badExports(t *testing.T, cursor uint64) map[string][]byte {
	data, _ := writeExport(t, newSliceFold(cursor, genEntries(50, 30)...), suiteMeta())
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0x10
	future := bytes.Clone(data)
	copy(future, encodePreamble(FormatVersion+1))
	other := suiteMeta()
	other.Bucket = "payments"
	foreign, _ := writeExport(t, newSliceFold(cursor, genEntries(50, 30)...), other)
	scoped := suiteMeta()
	scoped.Scope = kv.All()
	wrongScope, _ := writeExport(t, newSliceFold(cursor, genEntries(50, 30)...), scoped)
	return map[string][]byte{
		"truncated":   data[:len(data)-7],
		"bit flip":    flipped,
		"future":      future,
		"foreign":     foreign,
		"wrong scope": wrongScope,
		"not export":  []byte("<html>502 Bad Gateway</html>"),
		"empty":       {},
	}
}

func testSeedSkipsBadCandidates(t *testing.T, l *Location) {
	good := upload(t, l, 100, time.Now(), genEntries(50, 30)...)
	cursor := uint64(200)
	wantRejected := map[string]error{}
	for _, data := range badExports(t, cursor) {
		key, _ := objectKey("orders", cursor, time.Now())
		put(t, l, key, data)
		cursor++
		wantRejected[key] = ErrInvalidExport
	}
	dir := filepath.Join(t.TempDir(), "fold")
	s, err := NewSeeder(SeedConfig{Location: l, Bucket: "orders", Scope: suiteScope, Dir: dir, Open: openMemory})
	if err != nil {
		t.Fatal(err)
	}
	st, res, err := s.Seed(context.Background(), nil)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	defer st.Close()
	if res.Object.Key != good.Key || st.State().Cursor != 100 {
		t.Fatalf("seeded from %s at %d, want %s", res.Object.Key, st.State().Cursor, good.Key)
	}
	if len(res.Rejected) != len(wantRejected) {
		t.Fatalf("rejected %d candidates, want %d: %+v", len(res.Rejected), len(wantRejected), res.Rejected)
	}
	for _, r := range res.Rejected {
		if !errors.Is(r.Err, wantRejected[r.Object.Key]) {
			t.Errorf("candidate %s rejected with %v", r.Object.Key, r.Err)
		}
	}
	sameEntries(t, dump(t, st), newSliceFold(100, genEntries(50, 30)...).entries)
}

func testSeedNoneUsable(t *testing.T, l *Location) {
	for _, data := range badExports(t, 300) {
		key, _ := objectKey("orders", 300, time.Now())
		put(t, l, key, data)
	}
	dir := filepath.Join(t.TempDir(), "fold")
	old, err := openMemory(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	applyAll(t, old, 5, []fold.Entry{live("k.mine", "v", 5)})
	rs, err := NewReseeder(SeedConfig{Location: l, Bucket: "orders", Scope: suiteScope, Dir: dir, Open: openMemory})
	if err != nil {
		t.Fatal(err)
	}
	seed, err := rs(context.Background(), old)
	if seed != (fold.Reseeded{}) || err != nil {
		t.Fatalf("reseeder = %+v, %v; want a zero Reseeded, nil", seed, err)
	}
	// The old store is still open and untouched.
	if _, ok, err := old.Get("k.mine"); !ok || err != nil {
		t.Fatalf("old fold after a failed reseed: %v %v", ok, err)
	}
}

func testMissing(t *testing.T, l *Location) {
	ctx := context.Background()
	if _, err := l.Newest(ctx, "orders"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("newest in an empty location = %v, want ErrNotFound", err)
	}
	o, _ := ParseKey("orders/00000000000000000001-0000000000000000001-0123456789abcdef.slex")
	if _, err := l.Reader(ctx, o); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reader of a missing object = %v, want ErrNotFound", err)
	}
	if _, err := l.Stat(ctx, o.Key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stat of a missing object = %v, want ErrNotFound", err)
	}
}

func testSeedNamedObject(t *testing.T, l *Location) {
	older := upload(t, l, 10, time.Now(), live("k.old", "1", 1))
	upload(t, l, 20, time.Now(), live("k.new", "2", 2))
	dir := filepath.Join(t.TempDir(), "fold")
	s, err := NewSeeder(SeedConfig{Location: l, Bucket: "orders", Scope: suiteScope, Dir: dir, Open: openMemory, Object: older.Key})
	if err != nil {
		t.Fatal(err)
	}
	st, res, err := s.Seed(context.Background(), nil)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	defer st.Close()
	if res.Object.Key != older.Key || st.State().Cursor != 10 {
		t.Fatalf("seeded from %s at %d, want the named %s", res.Object.Key, st.State().Cursor, older.Key)
	}
	s, _ = NewSeeder(SeedConfig{Location: l, Bucket: "orders", Scope: suiteScope, Dir: dir + "2", Open: openMemory,
		Object: "orders/00000000000000000099-0000000000000000001-0123456789abcdef.slex"})
	if _, _, err := s.Seed(context.Background(), nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("seed from a missing named export: %v, want ErrNotFound", err)
	}
}
