package backends

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/foldtest"
)

func TestDetectAndOpen(t *testing.T) {
	for _, name := range []string{Pebble, Memory} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "fold")
			s, err := Open(dir, Config{Backend: name})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Apply([]fold.Mutation{{Op: fold.MutPut, Key: "a", Value: []byte("1"), Revision: 1}}, fold.State{Cursor: 1}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := Detect(dir)
			if err != nil || got != name {
				t.Fatalf("Detect = %q, %v; want %q", got, err, name)
			}
			s, err = Open(dir, Config{})
			if err != nil {
				t.Fatalf("open detected: %v", err)
			}
			if e, ok, err := s.Get("a"); err != nil || !ok || string(e.Value) != "1" {
				t.Fatalf("Get after detected open = %+v %v %v", e, ok, err)
			}
			s.Close()
			other := Memory
			if name == Memory {
				other = Pebble
			}
			_, err = Open(dir, Config{Backend: other})
			if !errors.Is(err, ErrBackendMismatch) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("open %s store as %s: %v, want ErrBackendMismatch naming the dir", name, other, err)
			}
		})
	}
}

func TestDetectUnknown(t *testing.T) {
	empty := t.TempDir()
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "data.db"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{empty, foreign, filepath.Join(empty, "missing")} {
		if _, err := Detect(dir); !errors.Is(err, fold.ErrUnknownBackend) || !strings.Contains(err.Error(), dir) {
			t.Errorf("Detect(%s) = %v, want ErrUnknownBackend naming the dir", dir, err)
		}
		if _, err := Open(dir, Config{}); !errors.Is(err, fold.ErrUnknownBackend) {
			t.Errorf("Open(%s) without backend = %v, want ErrUnknownBackend", dir, err)
		}
	}
	// A configured backend refuses a directory of unrelated files.
	for _, name := range []string{Pebble, Memory} {
		if _, err := Open(foreign, Config{Backend: name}); !errors.Is(err, fold.ErrUnknownBackend) {
			t.Errorf("Open(foreign, %s) = %v, want ErrUnknownBackend", name, err)
		}
	}
	if _, err := Open(t.TempDir(), Config{Backend: "rocksdb"}); !errors.Is(err, fold.ErrUnknownBackend) {
		t.Errorf("unknown backend name: %v", err)
	}
}

func TestBadMarker(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "SLIPSTREAM-FOLD"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Detect(dir); !errors.Is(err, fold.ErrUnknownBackend) {
		t.Fatalf("Detect with a bad marker = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "SLIPSTREAM-FOLD"), []byte("slipstream fold store\nbackend: memory\nformat: 99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Config{}); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("open of a newer format = %v, want ErrUnsupportedFormat", err)
	}
}

// TestConformanceViaOpen runs the suite through Open for both backends, so that the
// configuration path is covered too.
func TestConformanceViaOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("backend packages run the suite")
	}
	for _, name := range []string{Pebble, Memory} {
		t.Run(name, func(t *testing.T) {
			foldtest.RunStoreTests(t, func(t *testing.T, dir string) fold.Store {
				s, err := Open(dir, Config{Backend: name, Pebble: pebbleTestOptions()})
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}
