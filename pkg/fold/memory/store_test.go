package memory

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
	"github.com/slipstream-dev/slipstream/pkg/fold/foldtest"
)

func openTest(t *testing.T, dir string) fold.Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	foldtest.RunStoreTests(t, openTest, foldtest.Hooks{
		OpenErr: func(dir string) (fold.Store, error) { return Open(dir, Options{}) },
		Crash:   truncationCrash,
		Corrupt: flipMiddleByte,
	})
}

// truncationCrash applies the batches, then cuts the log at every byte offset inside the
// last three batches: a cut inside batch i's records must reopen at exactly the state
// before it, a cut at its end at the state after it.
func truncationCrash(t *testing.T, batches []foldtest.Batch, check func(fold.Store, int, int)) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Sync: SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	ends := []int64{s.size.Load()}
	for _, b := range batches {
		if err := s.Apply(b.Muts, b.State); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, s.size.Load())
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
	for i := len(batches) - 3; i < len(batches); i++ {
		for off := ends[i]; off <= ends[i+1]; off++ {
			if err := os.WriteFile(filepath.Join(img, LogName), data[:off], 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Open(img, Options{Sync: SyncNone})
			if err != nil {
				t.Fatalf("open log cut at %d: %v", off, err)
			}
			want := i
			if off == ends[i+1] {
				want = i + 1
			}
			check(s, want, want)
			s.Close()
		}
	}
}

// flipMiddleByte damages one byte in the middle half of the log.
func flipMiddleByte(t *testing.T, dir string, rng *rand.Rand) {
	p := filepath.Join(dir, LogName)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := len(data)/4 + rng.IntN(len(data)/2)
	data[i] ^= byte(1 + rng.IntN(255))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
