package foldtest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

func put(k, v string, rev uint64) fold.Mutation {
	return fold.Mutation{Op: fold.MutPut, Key: k, Value: []byte(v), Revision: rev}
}
func del(k string, rev uint64) fold.Mutation {
	return fold.Mutation{Op: fold.MutDelete, Key: k, Revision: rev}
}
func forget(k string) fold.Mutation { return fold.Mutation{Op: fold.MutForget, Key: k} }

func testApplyAndRead(t *testing.T, open OpenFunc) {
	s := openT(t, open, t.TempDir())
	if st := s.State(); st != (fold.State{}) {
		t.Fatalf("fresh store state = %+v, want zero", st)
	}
	m := NewModel()
	b := Batch{Muts: []fold.Mutation{put("a", "1", 1), put("b", "", 2), put("a", "3", 3)}, State: fold.State{Cursor: 3}}
	mustApply(t, s, b)
	m.Apply(b)
	e, ok, err := s.Get("a")
	if err != nil || !ok || string(e.Value) != "3" || e.Revision != 3 || !e.Live || e.Key != "a" {
		t.Fatalf("Get(a) = %+v %v %v, want value 3 at rev 3", e, ok, err)
	}
	e, ok, err = s.Get("b")
	if err != nil || !ok || len(e.Value) != 0 || e.Revision != 2 {
		t.Fatalf("Get(b) = %+v %v %v, want live empty value", e, ok, err)
	}
	if _, ok, err := s.Get("zz"); ok || err != nil {
		t.Fatalf("Get(absent) = %v %v", ok, err)
	}
	// Returned values are copies: changing them does not change the store.
	e.Value = append(e.Value[:0], 'x')
	if e2, _, _ := s.Get("b"); len(e2.Value) != 0 {
		t.Fatalf("store value changed through a returned slice")
	}
	// Nor does changing the caller's mutation after Apply.
	val := []byte("orig")
	mustApply(t, s, Batch{Muts: []fold.Mutation{{Op: fold.MutPut, Key: "c", Value: val, Revision: 4}}, State: fold.State{Cursor: 4}})
	copy(val, "XXXX")
	if e, _, _ := s.Get("c"); string(e.Value) != "orig" {
		t.Fatalf("Get(c) = %q after caller reused its buffer", e.Value)
	}
	m.Apply(Batch{Muts: []fold.Mutation{put("c", "orig", 4)}, State: fold.State{Cursor: 4}})
	// Same cursor again is allowed (no progress, e.g. a resync flag change).
	b = Batch{State: fold.State{Cursor: 4, Resyncing: true}}
	mustApply(t, s, b)
	m.Apply(b)
	RequireEqual(t, s, m)
	verify(t, s)
}

func testTombstonesAndForget(t *testing.T, open OpenFunc) {
	s := openT(t, open, t.TempDir())
	mustApply(t, s, Batch{Muts: []fold.Mutation{put("a", "1", 1), put("b", "2", 2), put("c", "3", 3)}, State: fold.State{Cursor: 3}})
	mustApply(t, s, Batch{Muts: []fold.Mutation{del("a", 4), del("zz", 5), forget("b"), forget("never")}, State: fold.State{Cursor: 5}})
	if _, ok, err := s.Get("a"); ok || err != nil {
		t.Fatalf("Get(tombstone) = %v %v, want absent", ok, err)
	}
	e, ok, err := s.Lookup("a")
	if err != nil || !ok || e.Live || e.Revision != 4 || len(e.Value) != 0 {
		t.Fatalf("Lookup(tombstone) = %+v %v %v, want tombstone at rev 4", e, ok, err)
	}
	if e, ok, _ := s.Lookup("zz"); !ok || e.Live || e.Revision != 5 {
		t.Fatalf("delete of an absent key must leave a tombstone, got %+v %v", e, ok)
	}
	if _, ok, _ := s.Lookup("b"); ok {
		t.Fatalf("forgotten key still present")
	}
	// A put revives a tombstone; a forget drops a tombstone.
	mustApply(t, s, Batch{Muts: []fold.Mutation{put("a", "again", 6), forget("zz")}, State: fold.State{Cursor: 6}})
	if e, ok, _ := s.Get("a"); !ok || string(e.Value) != "again" || e.Revision != 6 {
		t.Fatalf("revived key = %+v %v", e, ok)
	}
	if _, ok, _ := s.Lookup("zz"); ok {
		t.Fatalf("forgotten tombstone still present")
	}
	st, err := s.Stats()
	if err != nil || st.Live != 2 || st.Tombstones != 0 || st.LiveBytes != uint64(len("a")+len("again")+len("c")+len("3")) {
		t.Fatalf("stats = %+v %v", st, err)
	}
	if st.DiskBytes == 0 {
		t.Fatalf("DiskBytes = 0 for a store with data")
	}
}

func testRange(t *testing.T, open OpenFunc) {
	s := openT(t, open, t.TempDir())
	keys := []string{"b/2", "a", "b/1", "b", "b/10", "c", "b\xff", "b/1/x", "\xff\xff"}
	var muts []fold.Mutation
	for i, k := range keys {
		muts = append(muts, put(k, fmt.Sprint(i), uint64(i+1)))
	}
	muts = append(muts, del("b/3", 20))
	mustApply(t, s, Batch{Muts: muts, State: fold.State{Cursor: 20}})
	collect := func(prefix string, tomb bool) []string {
		var out []string
		for e, err := range s.Range(prefix, tomb) {
			if err != nil {
				t.Fatalf("range %q: %v", prefix, err)
			}
			if !e.Live && !tomb {
				t.Fatalf("range without tombstones yielded tombstone %q", e.Key)
			}
			out = append(out, e.Key)
		}
		return out
	}
	cases := []struct {
		prefix string
		tomb   bool
		want   string
	}{
		{"", false, "[a b b/1 b/1/x b/10 b/2 b\xff c \xff\xff]"},
		{"b/", false, "[b/1 b/1/x b/10 b/2]"},
		{"b/", true, "[b/1 b/1/x b/10 b/2 b/3]"},
		{"b", false, "[b b/1 b/1/x b/10 b/2 b\xff]"},
		{"\xff", false, "[\xff\xff]"},
		{"d", true, "[]"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(collect(c.prefix, c.tomb)); got != c.want {
			t.Errorf("Range(%q, %v) = %q, want %q", c.prefix, c.tomb, got, c.want)
		}
	}
	// RangeKeys (fold.KeyRanger) lists the same entries as Range, without values.
	if _, ok := s.(fold.KeyRanger); ok {
		for _, c := range cases {
			var want, got []fold.Entry
			for e, err := range s.Range(c.prefix, c.tomb) {
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, fold.Entry{Key: e.Key, Revision: e.Revision, Live: e.Live})
			}
			for e, err := range fold.RangeKeys(s, c.prefix, c.tomb) {
				if err != nil {
					t.Fatal(err)
				}
				if e.Value != nil {
					t.Errorf("RangeKeys(%q, %v) yielded a value for %q", c.prefix, c.tomb, e.Key)
				}
				got = append(got, e)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("RangeKeys(%q, %v) = %v, want %v", c.prefix, c.tomb, got, want)
			}
		}
	}
	// Breaking out early stops the iteration.
	n := 0
	for _, err := range s.Range("", false) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("early break: %d", n)
	}
}

func testCursorRegression(t *testing.T, open OpenFunc) {
	s := openT(t, open, t.TempDir())
	mustApply(t, s, Batch{Muts: []fold.Mutation{put("a", "1", 10)}, State: fold.State{Cursor: 10}})
	err := s.Apply([]fold.Mutation{put("a", "2", 11)}, fold.State{Cursor: 9})
	if !errors.Is(err, fold.ErrCursorRegression) {
		t.Fatalf("apply with lower cursor: %v, want ErrCursorRegression", err)
	}
	if e, _, _ := s.Get("a"); string(e.Value) != "1" || s.State().Cursor != 10 {
		t.Fatalf("rejected apply changed the store: %q cursor %d", e.Value, s.State().Cursor)
	}
	// A resync may restart the cursor (e.g. the bucket was recreated).
	mustApply(t, s, Batch{State: fold.State{Cursor: 0, Resyncing: true}})
	if st := s.State(); st.Cursor != 0 || !st.Resyncing {
		t.Fatalf("resync restart: state %+v, want cursor 0 resyncing", st)
	}
}

func testInvalidMutation(t *testing.T, open OpenFunc) {
	s := openT(t, open, t.TempDir())
	bad := [][]fold.Mutation{
		{put("ok", "1", 1), {Op: 0, Key: "x"}},
		{put("ok", "1", 1), {Op: 99, Key: "x"}},
		{put("ok", "1", 1), put("", "empty key", 2)},
		{put(string(bytes.Repeat([]byte("k"), 1<<16)), "long key", 1)},
	}
	for i, muts := range bad {
		if err := s.Apply(muts, fold.State{Cursor: 5}); err == nil {
			t.Fatalf("bad batch %d accepted", i)
		}
	}
	if _, ok, _ := s.Lookup("ok"); ok || s.State().Cursor != 0 {
		t.Fatalf("a rejected batch was partly applied")
	}
}

func testClosed(t *testing.T, open OpenFunc) {
	s := open(t, t.TempDir())
	mustApply(t, s, Batch{Muts: []fold.Mutation{put("a", "1", 1)}, State: fold.State{Cursor: 1}})
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, fold.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	_, _, err = s.Get("a")
	check("Get", err)
	_, _, err = s.Lookup("a")
	check("Lookup", err)
	_, err = s.Stats()
	check("Stats", err)
	check("Apply", s.Apply(nil, fold.State{Cursor: 2}))
	_, err = s.Snapshot()
	check("Snapshot", err)
	check("Flush", s.Flush())
	var rangeErr error
	for _, err := range s.Range("", true) {
		rangeErr = err
		break
	}
	check("Range", rangeErr)
	_, _, err = snap.Get("a")
	check("Snapshot.Get after store Close", err)
	snap.Close()
}

// A resync rewrites keys that are already there, forgets the ones the bucket lost and ends
// by clearing Resyncing: from then on Stats must be exact again (stores may approximate
// while it runs) and the contents must survive a reopen.
func testStatsAfterResync(t *testing.T, open OpenFunc) {
	dir := t.TempDir()
	s := openT(t, open, dir)
	var muts []fold.Mutation
	for i := range 100 {
		muts = append(muts, put(fmt.Sprintf("k%03d", i), "old", uint64(i+1)))
	}
	muts = append(muts, del("gone", 101))
	mustApply(t, s, Batch{Muts: muts, State: fold.State{Cursor: 101}})
	mustApply(t, s, Batch{State: fold.State{Resyncing: true}})
	var again []fold.Mutation
	for i := range 90 { // keys 90..99 vanished from the bucket
		again = append(again, put(fmt.Sprintf("k%03d", i), "new!", uint64(200+i)))
	}
	again = append(again, put("k000", "newest", 300), put("fresh", "x", 301))
	mustApply(t, s, Batch{Muts: again[:50], State: fold.State{Cursor: 249, Resyncing: true}})
	mustApply(t, s, Batch{Muts: again[50:], State: fold.State{Cursor: 301, Resyncing: true}})
	var diff []fold.Mutation
	for i := 90; i < 100; i++ {
		diff = append(diff, fold.Mutation{Op: fold.MutForget, Key: fmt.Sprintf("k%03d", i)})
	}
	diff = append(diff, fold.Mutation{Op: fold.MutForget, Key: "gone"})
	mustApply(t, s, Batch{Muts: diff, State: fold.State{Cursor: 301}})
	want := fold.Stats{Live: 91, LiveBytes: 89*len64("k000new!") + len64("k000newest") + len64("freshx")}
	check := func(s fold.Store) {
		t.Helper()
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Live != want.Live || st.Tombstones != 0 || st.LiveBytes != want.LiveBytes {
			t.Fatalf("stats after resync = %+v, want %d live (%d bytes), 0 tombstones", st, want.Live, want.LiveBytes)
		}
		if v, ok := s.(Verifier); ok {
			if err := v.Verify(); err != nil {
				t.Fatalf("verify after resync: %v", err)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openT(t, open, dir))
}

func len64(s string) uint64 { return uint64(len(s)) }
