package pebble

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// TestSpaceReserve: below the reserve Open and Apply refuse with ENOSPC and write nothing;
// the store takes writes again once the space is there.
func TestSpaceReserve(t *testing.T) {
	dir := t.TempDir()
	free, ok := freeBytes(dir)
	if !ok {
		t.Fatalf("statfs %s failed: the reserve check would be off", dir)
	}
	tooMuch := free + 1<<40 // more than the filesystem can ever have free

	if _, err := Open(dir, Options{MinFreeBytes: tooMuch, Logger: silent{}}); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "keeps free") {
		t.Fatalf("Open below the reserve: %v, want ENOSPC naming the reserve", err)
	}
	s, err := Open(dir, Options{Logger: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(rev uint64) error {
		return s.Apply([]fold.Mutation{{Op: fold.MutPut, Key: "k", Value: []byte("v"), Revision: rev}}, fold.State{Cursor: rev})
	}
	if err := put(1); err != nil {
		t.Fatal(err)
	}
	s.opts.MinFreeBytes = tooMuch // the disk "fills up"
	if err := put(2); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Apply below the reserve: %v, want ENOSPC", err)
	}
	if st := s.State(); st.Cursor != 1 {
		t.Fatalf("cursor %d after a refused Apply, want 1", st.Cursor)
	}
	s.opts.MinFreeBytes = 1 // space is back
	if err := put(2); err != nil {
		t.Fatalf("Apply once space is back: %v", err)
	}
	if e, found, err := s.Get("k"); err != nil || !found || e.Revision != 2 {
		t.Fatalf("Get after recovery: %+v %v %v", e, found, err)
	}
}
