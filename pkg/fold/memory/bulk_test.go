package memory

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
	"github.com/slipstream-dev/slipstream/pkg/fold/foldtest"
)

func TestBulkLoad(t *testing.T) {
	foldtest.RunBulkLoadTests(t, openTest, func(s fold.Store, dir string, entries iter.Seq2[fold.Entry, error], st fold.State) error {
		return s.(*Store).BulkLoad(filepath.Join(dir, "scratch"), entries, st)
	})
}

func bulkOpen(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// A crash at any point of the load's writes (the log cut there) reopens empty; only the
// complete log, CURSOR record included, reopens at the loaded state.
func TestBulkLoadCrash(t *testing.T) {
	m, _ := foldtest.RandomModel(4, 1500)
	dir := t.TempDir()
	s := bulkOpen(t, dir)
	if err := s.BulkLoad("", foldtest.BulkSeq(m.Sorted(), nil), m.State); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, LogName))
	if err != nil {
		t.Fatal(err)
	}
	img := t.TempDir()
	if err := storekit.WriteMarker(nil, img, storekit.Marker{Backend: BackendName, Format: FormatVersion}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	cuts := []int{headerLen, len(data) - 1}
	for range 40 {
		cuts = append(cuts, headerLen+rng.IntN(len(data)-headerLen))
	}
	for _, off := range append(cuts, len(data)) {
		if err := os.WriteFile(filepath.Join(img, LogName), data[:off], 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Open(img, Options{})
		if err != nil {
			t.Fatalf("reopen log cut at %d of %d: %v", off, len(data), err)
		}
		want := foldtest.NewModel()
		if off == len(data) {
			want = m
		}
		foldtest.RequireEqual(t, c, want)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A load of several storekit.SyncBehindBytes (its log fsynced in the background as it is written,
// writes and fsyncs overlapping) reopens with every entry and the cursor.
func TestBulkLoadSyncsBehind(t *testing.T) {
	const n, valueLen = 2*storekit.SyncBehindBytes/1024 + 100, 1000
	dir := t.TempDir()
	s := bulkOpen(t, dir)
	entries := func(yield func(fold.Entry, error) bool) {
		val := make([]byte, valueLen)
		for i := range n {
			val[0], val[1] = byte(i), byte(i>>8)
			if !yield(fold.Entry{Key: fmt.Sprintf("k.%07d", i), Value: val, Revision: uint64(i + 1), Live: true}, nil) {
				return
			}
		}
	}
	if err := s.BulkLoad("", entries, fold.State{Cursor: n}); err != nil {
		t.Fatal(err)
	}
	if size := s.size.Load(); size < 2*storekit.SyncBehindBytes {
		t.Fatalf("log of %d bytes: the background fsync was not exercised", size)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c := bulkOpen(t, dir)
	if st, got := c.State(), c.w.Len(); st.Cursor != n || got != n {
		t.Fatalf("reopened at %+v with %d keys, want cursor and keys %d", st, got, n)
	}
	e, ok, err := c.Get(fmt.Sprintf("k.%07d", n-1))
	if err != nil || !ok || e.Revision != n || len(e.Value) != valueLen || e.Value[0] != byte((n-1)&0xff) {
		t.Fatalf("last key after reopen: %+v %v %v", e, ok, err)
	}
}
