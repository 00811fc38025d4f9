package memory

import (
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
