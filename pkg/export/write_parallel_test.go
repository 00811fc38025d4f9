package export

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/pebble"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// manyTablesFold is a pebble fold of n keys (every 7th a tombstone) under "k." plus, with
// stray, one key outside that scope, written with small memtables so that it spans many
// sstables (SplitKeys has boundaries to offer).
func manyTablesFold(t *testing.T, n int, stray bool) *pebble.Store {
	t.Helper()
	st, err := pebble.Open(t.TempDir(), pebble.Options{Sync: pebble.SyncNone, MemTableSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var muts []fold.Mutation
	for i := range n {
		m := fold.Mutation{Op: fold.MutPut, Key: fmt.Sprintf("k.%06d", i), Value: bytes.Repeat([]byte{byte(i)}, 200), Revision: uint64(i + 1)}
		if i%7 == 0 {
			m = fold.Mutation{Op: fold.MutDelete, Key: m.Key, Revision: m.Revision}
		}
		muts = append(muts, m)
		if len(muts) == 1000 || i == n-1 {
			if err := st.Apply(muts, fold.State{Cursor: uint64(i + 1)}); err != nil {
				t.Fatal(err)
			}
			muts = muts[:0]
		}
	}
	if stray {
		if err := st.Apply([]fold.Mutation{{Op: fold.MutPut, Key: "z.stray", Value: []byte("x"), Revision: uint64(n + 1)}}, fold.State{Cursor: uint64(n + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	return st
}

// sequentialOnly hides a snapshot's parallel and borrowing reads.
type sequentialOnly struct{ fold.Reader }

// The parallel write of a pebble snapshot (several key ranges at once) yields an export
// that verifies and holds exactly the records of the sequential write.
func TestWriteParallelMatchesSequential(t *testing.T) {
	st := manyTablesFold(t, 30000, false)
	snap, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	keys, err := snap.(splitRanger).SplitKeys(16)
	if err != nil || len(keys) < 2 {
		t.Fatalf("split keys %q (%v): want several, or the parallel path is not exercised", keys, err)
	}
	meta := Meta{Bucket: "orders", Scope: kv.Prefixes("k.")}
	var par, seq bytes.Buffer
	ps, err := Write(&par, snap, meta)
	if err != nil {
		t.Fatalf("parallel write: %v", err)
	}
	ss, err := Write(&seq, sequentialOnly{snap}, meta)
	if err != nil {
		t.Fatalf("sequential write: %v", err)
	}
	if ps.Header.Live != ss.Header.Live || ps.Header.Tombstones != ss.Header.Tombstones || ps.Header.Count() != 30000 {
		t.Fatalf("headers %+v and %+v", ps.Header, ss.Header)
	}
	read := func(b []byte) []fold.Entry {
		rd, err := Open(bytes.NewReader(b), ExpectFold("orders", kv.Prefixes("k.")))
		if err != nil {
			t.Fatal(err)
		}
		var out []fold.Entry
		for e, err := range rd.All() {
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			out = append(out, e)
		}
		return out
	}
	sameEntries(t, read(par.Bytes()), read(seq.Bytes()))
	sameEntries(t, read(par.Bytes()), dump(t, snap))
}

// A key outside the scope in any range fails the parallel write with ErrNotExportable.
func TestWriteParallelChecksEveryRange(t *testing.T) {
	st := manyTablesFold(t, 20000, true)
	snap, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	var buf bytes.Buffer
	_, err = Write(&buf, snap, Meta{Bucket: "orders", Scope: kv.Prefixes("k.")})
	if !errors.Is(err, ErrNotExportable) {
		t.Fatalf("write with a key outside the scope = %v, want ErrNotExportable", err)
	}
}

// BenchmarkWriteSnapshot: Write of a pebble snapshot to io.Discard, read in parallel key
// ranges against one sequential pass (SLIPSTREAM_BENCH_KEYS, default 1M here too).
func BenchmarkWriteSnapshot(b *testing.B) {
	benchSetup(b)
	st, err := pebble.Open(benchFixture.foldDir, pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	meta := Meta{Bucket: "bench", Scope: kv.Prefixes("k.")}
	for _, mode := range []string{"parallel", "sequential"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				snap, err := st.Snapshot()
				if err != nil {
					b.Fatal(err)
				}
				var r fold.Reader = snap
				if mode == "sequential" {
					r = sequentialOnly{snap}
				}
				sum, err := Write(io.Discard, r, meta)
				snap.Close()
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(sum.Bytes)
			}
		})
	}
}
