package export

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// An export written to a local file with write-behind (storekit.WriteBehind) holds exactly what the writer reported: every frame
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
	wb := storekit.NewWriteBehind(f, 0)
	sum, err := writeTo(f, wb, snap, meta)
	if err != nil {
		t.Fatal(err)
	}
	if wb.Written() != sum.Bytes || wb.WritebackStarted() == 0 {
		t.Fatalf("write-behind saw %d bytes (writeback started up to %d), the export is %d", wb.Written(), wb.WritebackStarted(), sum.Bytes)
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
