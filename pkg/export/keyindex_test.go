package export

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// The index answers exactly what a lookup in the staged store reports (fold.PriorOf),
// for keys present (live or tombstones, empty values), absent between, before and after
// them, and prefixes of present keys.
func TestKeyIndexPrior(t *testing.T) {
	var entries []fold.Entry
	for i := range 1000 {
		e := fold.Entry{Key: fmt.Sprintf("k.%04d", 2*i), Revision: uint64(i + 1), Live: i%5 != 0}
		if e.Live {
			e.Value = make([]byte, i%7*100)
		}
		entries = append(entries, e)
	}
	x := newKeyIndex(uint64(len(entries)))
	for _, e := range entries {
		if !x.add(e) {
			t.Fatal("index full")
		}
	}
	for _, e := range entries {
		if got, want := x.prior(e.Key), fold.PriorOf(e, true); got != want {
			t.Fatalf("prior(%q) = %+v, want %+v", e.Key, got, want)
		}
	}
	for _, key := range []string{"", "a", "k.", "k.000", "k.0001", "k.0003", "k.1999", "k.2000", "k.9999", "l"} {
		if got := x.prior(key); got != fold.Absent {
			t.Fatalf("prior(%q) = %+v for a key the index does not hold", key, got)
		}
	}
}

// An index that would outgrow maxKeyIndexBytes refuses the entry (the caller drops it),
// and an export too large for one is staged without.
func TestKeyIndexBound(t *testing.T) {
	defer func(n int) { maxKeyIndexBytes = n }(maxKeyIndexBytes)
	maxKeyIndexBytes = 1000
	if x := newKeyIndex(1000); x != nil {
		t.Fatal("an index for 1000 records fits in 1000 bytes")
	}
	x := newKeyIndex(10)
	added := 0
	for i := range 100 {
		if !x.add(fold.Entry{Key: fmt.Sprintf("key.%06d", i), Value: []byte("v"), Live: true}) {
			break
		}
		added++
	}
	if used := len(x.keys) + len(x.ends)*keyIndexEntryBytes; added == 0 || added == 100 || used > maxKeyIndexBytes {
		t.Fatalf("added %d entries, %d bytes (bound %d)", added, used, maxKeyIndexBytes)
	}
}

// Once the index is dropped (Staged.DropIndex), the check's reader asks the store.
func TestIndexedStoreAfterDrop(t *testing.T) {
	st, err := openMemory(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Apply([]fold.Mutation{{Op: fold.MutPut, Key: "a", Value: []byte("xyz"), Revision: 1}}, fold.State{Cursor: 1}); err != nil {
		t.Fatal(err)
	}
	var ptr atomic.Pointer[keyIndex]
	x := newKeyIndex(1)
	x.add(fold.Entry{Key: "b", Live: true}) // the index says otherwise than the store
	ptr.Store(x)
	r := indexedStore{st, &ptr}
	if p, err := r.LookupPrior("a"); err != nil || p != fold.Absent {
		t.Fatalf("with the index: prior(a) = %+v, %v; want the index's answer (absent)", p, err)
	}
	ptr.Store(nil)
	want := fold.Prior{Known: true, Exists: true, Live: true, ValueLen: 3}
	if p, err := r.LookupPrior("a"); err != nil || p != want {
		t.Fatalf("after the drop: prior(a) = %+v, %v; want the store's %+v", p, err, want)
	}
}
