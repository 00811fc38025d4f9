package export

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// An export written to a local file with write-behind (writeback started every
// writeBehindBytes, fsync at the end) holds exactly what the writer reported: every frame
// buffer handed between the range readers, the writer and the pipe reached the file once.
func TestWriteBehindFile(t *testing.T) {
	st := manyTablesFold(t, 60000, false) // ~13 MB: writeback starts at least once
	snap, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "export"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	meta := Meta{Bucket: "orders", Scope: kv.Prefixes("k.")}
	wb := &writeBehind{f: f}
	sum, err := writeTo(f, wb, snap, meta)
	if err != nil {
		t.Fatal(err)
	}
	if wb.off != sum.Bytes || wb.started == 0 {
		t.Fatalf("write-behind saw %d bytes (writeback started up to %d), the export is %d", wb.off, wb.started, sum.Bytes)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	vs, err := Verify(bytes.NewReader(got), ExpectFold("orders", kv.Prefixes("k.")))
	if err != nil {
		t.Fatalf("verify the file: %v", err)
	}
	if vs.Bytes != sum.Bytes || vs.Checksum != sum.Checksum || vs.Header.Count() != 60000 {
		t.Fatalf("file verifies as %+v, the writer reported %+v", vs, sum)
	}
}

// Every syncBehindBytes written, the file is fsynced in the background, one fsync at a
// time; sync waits for it before its own.
func TestWriteBehindSyncsInBackground(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "export"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wb := &writeBehind{f: f}
	chunk := make([]byte, 1<<20)
	for range 2*syncBehindBytes/len(chunk) + 1 {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if err := wb.wrote(len(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if wb.synced < syncBehindBytes {
		t.Fatalf("after %d bytes, the last background fsync started at %d", wb.off, wb.synced)
	}
	if err := wb.sync(); err != nil {
		t.Fatal(err)
	}
	if wb.busy {
		t.Fatal("a background fsync still runs after sync")
	}
}

// A failed background fsync fails the upload: the next write reports it, and so does
// sync (a later fsync may succeed although the data was lost).
func TestWriteBehindBackgroundSyncError(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "export"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close() // every fsync fails
	wb := &writeBehind{f: f}
	werr := wb.wrote(syncBehindBytes)
	if !wb.busy && werr == nil {
		t.Fatal("no background fsync started")
	}
	if err := wb.sync(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("sync after a failed background fsync: %v, want %v", err, os.ErrClosed)
	}
	if err := wb.wrote(1); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write after a failed background fsync: %v, want %v", err, os.ErrClosed)
	}
}
