package export

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/memory"
	"github.com/slipstream-dev/slipstream/pkg/fold/pebble"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Store openers for tests (the backends package may choose other defaults).
func openMemory(dir string) (fold.Store, error) {
	return memory.Open(dir, memory.Options{Sync: memory.SyncNone})
}

func openPebble(dir string) (fold.Store, error) { return pebble.Open(dir, pebble.Options{}) }

var testBackends = map[string]OpenStore{"memory": openMemory, "pebble": openPebble}

// applyAll loads entries into a store at cursor.
func applyAll(t testing.TB, st fold.Store, cursor uint64, entries []fold.Entry) {
	t.Helper()
	muts := make([]fold.Mutation, len(entries))
	for i, e := range entries {
		muts[i] = fold.Mutation{Op: fold.MutPut, Key: e.Key, Value: e.Value, Revision: e.Revision}
		if !e.Live {
			muts[i] = fold.Mutation{Op: fold.MutDelete, Key: e.Key, Revision: e.Revision}
		}
	}
	if err := st.Apply(muts, fold.State{Cursor: cursor}); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// dump lists a store's entries, tombstones included.
func dump(t testing.TB, r fold.Reader) []fold.Entry {
	t.Helper()
	var out []fold.Entry
	for e, err := range r.Range("", true) {
		if err != nil {
			t.Fatalf("range: %v", err)
		}
		if !e.Live {
			e.Value = nil
		}
		out = append(out, e)
	}
	return out
}

func sameEntries(t testing.TB, got, want []fold.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.Revision != w.Revision || g.Live != w.Live || !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("entry %d: %q rev %d live %v, want %q rev %d live %v", i, g.Key, g.Revision, g.Live, w.Key, w.Revision, w.Live)
		}
	}
}

// TestImportAcrossBackends exports from each backend and imports into each: the format
// does not depend on the backend.
func TestImportAcrossBackends(t *testing.T) {
	entries := genEntries(2000, 64)
	for from, openFrom := range testBackends {
		for to, openTo := range testBackends {
			t.Run(from+"->"+to, func(t *testing.T) {
				src, err := openFrom(filepath.Join(t.TempDir(), "src"))
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				applyAll(t, src, 5000, entries)
				snap, err := src.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				_, err = Write(&buf, snap, Meta{Bucket: "b", Scope: kv.Prefixes("k."), Backend: from})
				snap.Close()
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				final := filepath.Join(dir, "fold")
				st, sum, err := Import(context.Background(), &buf, StagingDir(final), final,
					StageOptions{Expect: ExpectFold("b", kv.Prefixes("k.")), Open: openTo, BatchRecords: 300})
				if err != nil {
					t.Fatalf("import: %v", err)
				}
				defer st.Close()
				if st.State() != (fold.State{Cursor: 5000}) || sum.Header.Backend != from {
					t.Errorf("state %+v, header %+v", st.State(), sum.Header)
				}
				sameEntries(t, dump(t, st), dump(t, src))
				if _, err := os.Stat(StagingDir(final)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("staging directory left behind: %v", err)
				}
			})
		}
	}
}

// TestImportReplacesFold swaps over an existing fold; a bad export leaves it untouched.
func TestImportReplacesFold(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "fold")
	old, err := openMemory(final)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, old, 3, []fold.Entry{live("k.old", "x", 3)})
	old.Close()

	good, _ := writeExport(t, newSliceFold(50, live("k.new", "y", 40)), Meta{Bucket: "b", Scope: kv.Prefixes("k.")})
	bad := bytes.Clone(good)
	bad[len(bad)-30] ^= 0x40
	opts := StageOptions{Expect: ExpectFold("b", kv.Prefixes("k.")), Open: openMemory}

	if _, _, err := Import(context.Background(), bytes.NewReader(bad), StagingDir(final), final, opts); !errors.Is(err, ErrChecksum) {
		t.Fatalf("import of damaged export: %v, want ErrChecksum", err)
	}
	st, err := openMemory(final)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, dump(t, st), []fold.Entry{live("k.old", "x", 3)})
	st.Close()

	st, _, err = Import(context.Background(), bytes.NewReader(good), StagingDir(final), final, opts)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	defer st.Close()
	sameEntries(t, dump(t, st), []fold.Entry{live("k.new", "y", 40)})
	if st.State().Cursor != 50 {
		t.Errorf("cursor %d, want 50", st.State().Cursor)
	}
}

// TestStageTruncatedNeverConsistent: an export cut short leaves nothing behind, and the
// partial store is never marked consistent (checked by reopening a staging store that a
// crash would have left: Resyncing).
func TestStageTruncated(t *testing.T) {
	data, _ := writeExport(t, newSliceFold(9000, genEntries(5000, 100)...), Meta{Bucket: "b", Scope: kv.Prefixes("k.")})
	dir := filepath.Join(t.TempDir(), "stage")
	var last fold.State
	opener := func(d string) (fold.Store, error) {
		st, err := openMemory(d)
		return &stateSpy{Store: st, last: &last}, err
	}
	_, err := Stage(context.Background(), bytes.NewReader(data[:len(data)-100]), dir,
		StageOptions{Open: opener, BatchRecords: 100})
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("stage: %v, want ErrTruncated", err)
	}
	if !last.Resyncing {
		t.Errorf("last state applied before the failure: %+v, want Resyncing", last)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging directory left behind: %v", err)
	}
}

type stateSpy struct {
	fold.Store
	last *fold.State
}

func (s *stateSpy) Apply(m []fold.Mutation, st fold.State) error {
	*s.last = st
	return s.Store.Apply(m, st)
}

// OnHeader sees the header of an export that matches Expect, before staging, and is not
// called for a foreign one.
func TestStageOnHeader(t *testing.T) {
	data, _ := writeExport(t, newSliceFold(9000, genEntries(50, 10)...), Meta{Bucket: "b", Scope: kv.Prefixes("k.")})
	for _, c := range []struct {
		bucket string
		want   bool
	}{{"b", true}, {"other", false}} {
		var got []Header
		st, err := Stage(context.Background(), bytes.NewReader(data), filepath.Join(t.TempDir(), "stage"), StageOptions{
			Expect:   ExpectFold(c.bucket, kv.Prefixes("k.")),
			Open:     openMemory,
			OnHeader: func(h Header) { got = append(got, h) },
		})
		if c.want {
			if err != nil {
				t.Fatal(err)
			}
			_ = st.Discard()
			if len(got) != 1 || got[0].Cursor != 9000 {
				t.Errorf("OnHeader calls %+v, want one with cursor 9000", got)
			}
			continue
		}
		if !errors.Is(err, ErrForeign) || len(got) != 0 {
			t.Errorf("foreign export: err %v, OnHeader calls %+v; want ErrForeign and none", err, got)
		}
	}
}
