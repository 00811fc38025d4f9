package memory

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/foldtest"
)

func mustOpen(t *testing.T, dir string, o Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCompactShrinksAndPreserves(t *testing.T) {
	dir := t.TempDir()
	o := Options{Sync: SyncNone, DisableAutoCompact: true}
	s := mustOpen(t, dir, o)
	m := foldtest.NewModel()
	for _, b := range foldtest.RandomLog(rand.New(rand.NewPCG(2, 2)), 4000, 50, 100, 20) {
		if err := s.Apply(b.Muts, b.State); err != nil {
			t.Fatal(err)
		}
		m.Apply(b)
	}
	before := s.size.Load()
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if after := s.size.Load(); after >= before/4 {
		t.Fatalf("compaction left %d of %d bytes", after, before)
	}
	foldtest.RequireEqual(t, s, m)
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	foldtest.RequireEqual(t, mustOpen(t, dir, o), m)
}

// TestCompactWhileApplying runs compactions (automatic and explicit) while batches keep
// arriving: records appended during a compaction must be carried over.
func TestCompactWhileApplying(t *testing.T) {
	dir := t.TempDir()
	o := Options{Sync: SyncNone, CompactMinBytes: 32 << 10, CompactRatio: 1.5}
	s := mustOpen(t, dir, o)
	m := foldtest.NewModel()
	batches := foldtest.RandomLog(rand.New(rand.NewPCG(3, 3)), 20000, 100, 200, 10)
	done := make(chan struct{})
	go func() {
		for range 5 {
			if err := s.Compact(); err != nil {
				t.Log(err) // an automatic compaction may be running; that's fine
			}
		}
		close(done)
	}()
	for _, b := range batches {
		if err := s.Apply(b.Muts, b.State); err != nil {
			t.Fatal(err)
		}
		m.Apply(b)
	}
	<-done
	s.wg.Wait()
	if s.compactions.Load() < 2 {
		t.Fatalf("only %d compactions ran", s.compactions.Load())
	}
	foldtest.RequireEqual(t, s, m)
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	foldtest.RequireEqual(t, mustOpen(t, dir, o), m)
}

// TestCrashDuringCompaction: until the rename, the old log is the store and a half-written
// compaction file is discarded on open; after it, the new log is complete.
func TestCrashDuringCompaction(t *testing.T) {
	dir := t.TempDir()
	o := Options{Sync: SyncNone, DisableAutoCompact: true}
	s := mustOpen(t, dir, o)
	m := foldtest.NewModel()
	for i := range 50 {
		b := foldtest.Batch{Muts: []fold.Mutation{{Op: fold.MutPut, Key: fmt.Sprint("k", i%7), Value: []byte(fmt.Sprint(i)), Revision: uint64(i + 1)}},
			State: fold.State{Cursor: uint64(i + 1)}}
		if err := s.Apply(b.Muts, b.State); err != nil {
			t.Fatal(err)
		}
		m.Apply(b)
	}
	// A crash mid-compaction leaves a partial temp file beside the intact log.
	f, err := os.Create(filepath.Join(dir, compactName))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.writeView(f, s.cur.Load()); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if err := f.Truncate(fi.Size() / 2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s.Close()
	s = mustOpen(t, dir, o)
	foldtest.RequireEqual(t, s, m)
	if _, err := os.Stat(filepath.Join(dir, compactName)); !os.IsNotExist(err) {
		t.Fatalf("leftover compaction file not removed: %v", err)
	}
}

func TestVerifyDetectsDamageAfterOpen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	for i := range 20 {
		if err := s.Apply([]fold.Mutation{{Op: fold.MutPut, Key: fmt.Sprint("k", i), Value: []byte("some value"), Revision: uint64(i + 1)}}, fold.State{Cursor: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, LogName)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(); err == nil || !errorsIsCorrupted(err) {
		t.Fatalf("Verify after damage: %v, want ErrCorrupted", err)
	}
}
