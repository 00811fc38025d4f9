package export

import (
	"bytes"
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
