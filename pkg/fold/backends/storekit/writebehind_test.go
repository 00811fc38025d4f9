package storekit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Every SyncBehindBytes written, the file is fsynced in the background, one fsync at a
// time, and writeback is started every WritebackBytes; Sync waits for the background
// fsync before its own.
func TestWriteBehindSyncsInBackground(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const start = 100
	if _, err := f.Write(make([]byte, start)); err != nil {
		t.Fatal(err)
	}
	wb := NewWriteBehind(f, start)
	chunk := make([]byte, 1<<20)
	for range 2*SyncBehindBytes/len(chunk) + 1 {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if err := wb.Wrote(len(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if wb.Written() != start+2*SyncBehindBytes+1<<20 {
		t.Fatalf("written %d", wb.Written())
	}
	if wb.SyncedBehind() < start+SyncBehindBytes || wb.WritebackStarted() < start+WritebackBytes {
		t.Fatalf("after %d bytes, the last background fsync started at %d and writeback up to %d",
			wb.Written(), wb.SyncedBehind(), wb.WritebackStarted())
	}
	if err := wb.Sync(); err != nil {
		t.Fatal(err)
	}
	if wb.busy {
		t.Fatal("a background fsync still runs after Sync")
	}
}

// A failed background fsync fails the file: the next write reports it, and so do Stop and
// Sync (a later fsync may succeed although the data was lost).
func TestWriteBehindBackgroundSyncError(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close() // every fsync fails
	wb := NewWriteBehind(f, 0)
	werr := wb.Wrote(SyncBehindBytes)
	if !wb.busy && werr == nil {
		t.Fatal("no background fsync started")
	}
	if err := wb.Stop(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Stop after a failed background fsync: %v, want %v", err, os.ErrClosed)
	}
	if err := wb.Sync(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Sync after a failed background fsync: %v, want %v", err, os.ErrClosed)
	}
	if err := wb.Wrote(1); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write after a failed background fsync: %v, want %v", err, os.ErrClosed)
	}
}
