package export

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// FuzzReader feeds arbitrary bytes to the reader: it must never panic, every failure must
// be an invalid-export error, and whatever verifies must read back to what it claims.
// Corpus: testdata/fuzz/FuzzReader (a valid export and damaged variants).
func FuzzReader(f *testing.F) {
	src := newSliceFold(10, live("a.1", "one", 1), tomb("a.2", 2), live("a.3", "three", 3))
	var buf bytes.Buffer
	if _, err := Write(&buf, src, Meta{Bucket: "b", Scope: kv.Prefixes("a."), Created: time.Unix(1, 0)}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := Open(bytes.NewReader(data), Expect{})
		if err != nil {
			if !errors.Is(err, ErrInvalidExport) {
				t.Fatalf("Open error %v does not match ErrInvalidExport", err)
			}
			return
		}
		var n, live uint64
		for rd.Next() {
			n++
			if rd.Entry().Live {
				live++
			}
		}
		if err := rd.Err(); err != nil {
			if !errors.Is(err, ErrInvalidExport) {
				t.Fatalf("read error %v does not match ErrInvalidExport", err)
			}
			return
		}
		sum := rd.Summary()
		if sum.Bytes != int64(len(data)) || sum.Header.Count() != n || sum.Header.Live != live {
			t.Fatalf("verified export: summary %+v, %d bytes, %d records (%d live)", sum, len(data), n, live)
		}
	})
}
