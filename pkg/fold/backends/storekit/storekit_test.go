package storekit

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

func TestPrepare(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	mem := Marker{Backend: "memory", Format: 1}
	fresh, err := Prepare(vfs.Default, dir, mem)
	if err != nil || !fresh {
		t.Fatalf("Prepare(new dir) = %v, %v", fresh, err)
	}
	m, ok, err := ReadMarker(vfs.Default, dir)
	if err != nil || !ok || m != mem {
		t.Fatalf("ReadMarker = %+v %v %v", m, ok, err)
	}
	if fresh, err := Prepare(vfs.Default, dir, mem); err != nil || fresh {
		t.Fatalf("Prepare(same backend) = %v, %v", fresh, err)
	}
	if _, err := Prepare(vfs.Default, dir, Marker{Backend: "pebble", Format: 1}); !errors.Is(err, ErrBackendMismatch) {
		t.Fatalf("Prepare(other backend) = %v", err)
	}
	if _, err := Prepare(vfs.Default, dir, Marker{Backend: "memory", Format: 2}); err != nil {
		t.Fatalf("a newer build must open an older format: %v", err)
	}
	if err := WriteMarker(vfs.Default, dir, Marker{Backend: "memory", Format: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(vfs.Default, dir, mem); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("Prepare(newer format) = %v", err)
	}
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(vfs.Default, foreign, mem); !errors.Is(err, fold.ErrUnknownBackend) {
		t.Fatalf("Prepare(foreign dir) = %v", err)
	}
}

func TestParseMarker(t *testing.T) {
	for _, bad := range []string{"", "slipstream fold store\n", "other\nbackend: memory\nformat: 1\n",
		"slipstream fold store\nbackend: memory\nformat: x\n", "slipstream fold store\nbackend memory\n"} {
		if _, err := parseMarker([]byte(bad)); err == nil {
			t.Errorf("parseMarker(%q) accepted", bad)
		}
	}
	m := Marker{Backend: "pebble", Format: 7}
	if got, err := parseMarker(m.encode()); err != nil || got != m {
		t.Fatalf("round trip = %+v %v", got, err)
	}
}

func TestGuardCloseWaitsForOperations(t *testing.T) {
	var g Guard
	if err := g.Acquire(); err != nil {
		t.Fatal(err)
	}
	var released atomic.Bool
	done := make(chan struct{})
	go func() {
		if !g.Close() {
			t.Error("first Close reported already closed")
		}
		if !released.Load() {
			t.Error("Close returned while an operation was in flight")
		}
		close(done)
	}()
	for !g.Closed() {
		runtime.Gosched()
	}
	if err := g.Acquire(); !errors.Is(err, fold.ErrClosed) {
		t.Fatalf("Acquire while closing = %v, want ErrClosed", err)
	}
	released.Store(true)
	g.Release()
	<-done
	if g.Close() {
		t.Fatal("second Close reported closing")
	}
}

// Many readers acquiring and releasing while Close runs: Close returns only when none is
// in flight, and every Acquire after it fails.
func TestGuardConcurrentReadersAndClose(t *testing.T) {
	var g Guard
	var inFlight atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if err := g.Acquire(); err != nil {
					return
				}
				inFlight.Add(1)
				runtime.Gosched()
				inFlight.Add(-1)
				g.Release()
			}
		}()
	}
	runtime.Gosched()
	if !g.Close() {
		t.Fatal("Close reported already closed")
	}
	if n := inFlight.Load(); n != 0 {
		t.Fatalf("Close returned with %d operations in flight", n)
	}
	wg.Wait()
	if err := g.Acquire(); !errors.Is(err, fold.ErrClosed) {
		t.Fatalf("Acquire after Close = %v", err)
	}
}

func BenchmarkGuardParallel(b *testing.B) {
	var g Guard
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := g.Acquire(); err != nil {
				b.Fatal(err)
			}
			g.Release()
		}
	})
}

func TestCheckMutations(t *testing.T) {
	ok := []fold.Mutation{{Op: fold.MutPut, Key: "k", Value: []byte("v")}, {Op: fold.MutDelete, Key: "k", Value: []byte("ignored")}, {Op: fold.MutForget, Key: "k"}}
	if err := CheckMutations(ok); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []fold.Mutation{{Op: 0, Key: "k"}, {Op: 4, Key: "k"}, {Op: fold.MutPut}, {Op: fold.MutPut, Key: string(make([]byte, MaxKeyLen+1))}} {
		if err := CheckMutations([]fold.Mutation{bad}); !errors.Is(err, ErrInvalidMutation) {
			t.Errorf("CheckMutations(%+v) = %v", bad.Op, err)
		}
	}
}
