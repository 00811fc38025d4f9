package foldtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

func testReopenEquality(t *testing.T, open OpenFunc) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	batches := RandomLog(rng, 2000, 300, 200, 40)
	m := NewModel()
	s := open(t, dir)
	for _, b := range batches {
		mustApply(t, s, b)
		m.Apply(b)
	}
	RequireEqual(t, s, m)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, open, dir)
	RequireEqual(t, s, m)
	verify(t, s)
	// The reopened store keeps working.
	b := Batch{Muts: []fold.Mutation{put("after/reopen", "x", 1<<40)}, State: fold.State{Cursor: m.State.Cursor + 1}}
	mustApply(t, s, b)
	m.Apply(b)
	RequireEqual(t, s, m)
}

// testPureFunction: applying a log in many small batches and in one big batch gives the
// same fold, before and after reopening.
func testPureFunction(t *testing.T, open OpenFunc) {
	rng := rand.New(rand.NewPCG(3, 4))
	batches := RandomLog(rng, 5000, 400, 300, 25)
	m := NewModel()
	var all []fold.Mutation
	for _, b := range batches {
		m.Apply(b)
		all = append(all, b.Muts...)
	}
	inc := openT(t, open, t.TempDir())
	for _, b := range batches {
		mustApply(t, inc, b)
	}
	bigDir := t.TempDir()
	big := open(t, bigDir)
	mustApply(t, big, Batch{Muts: all, State: m.State})
	a, err := Dump(inc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Dump(big)
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(a, b); d != "" {
		t.Fatalf("incremental and one-batch folds differ: %s", d)
	}
	RequireEqual(t, inc, m)
	RequireEqual(t, big, m)
	if err := big.Close(); err != nil {
		t.Fatal(err)
	}
	big = openT(t, open, bigDir)
	RequireEqual(t, big, m)
}

func testLargeValues(t *testing.T, open OpenFunc) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	s := open(t, dir)
	m := NewModel()
	for i := range 4 {
		b := Batch{Muts: []fold.Mutation{{Op: fold.MutPut, Key: fmt.Sprintf("big/%d", i), Value: randBytes(rng, 1<<20), Revision: uint64(i + 1)}},
			State: fold.State{Cursor: uint64(i + 1)}}
		mustApply(t, s, b)
		m.Apply(b)
	}
	e, ok, err := s.Get("big/2")
	if err != nil || !ok || !bytes.Equal(e.Value, m.Entries["big/2"].Value) {
		t.Fatalf("Get(big/2): ok %v err %v len %d", ok, err, len(e.Value))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, open, dir)
	RequireEqual(t, s, m)
	verify(t, s)
}

func testManyKeys(t *testing.T, open OpenFunc) {
	const n, batch = 50_000, 1000
	dir := t.TempDir()
	s := open(t, dir)
	m := NewModel()
	val := bytes.Repeat([]byte("v"), 64)
	for i := 0; i < n; i += batch {
		b := Batch{State: fold.State{Cursor: uint64(i + batch)}}
		for j := i; j < i+batch; j++ {
			b.Muts = append(b.Muts, fold.Mutation{Op: fold.MutPut, Key: fmt.Sprintf("key/%08d", j), Value: val, Revision: uint64(j + 1)})
		}
		mustApply(t, s, b)
		m.Apply(b)
	}
	st, err := s.Stats()
	if err != nil || st.Live != n || st.LiveBytes != n*(12+64) {
		t.Fatalf("stats = %+v %v", st, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, open, dir)
	RequireEqual(t, s, m)
	if e, ok, err := s.Get("key/00031337"); err != nil || !ok || e.Revision != 31338 {
		t.Fatalf("Get = %+v %v %v", e, ok, err)
	}
}

// testLargeBatches applies batches of hundreds to thousands of mutations over a few
// hundred keys, so most replace what earlier batches wrote and many repeat a key within
// the batch: the counts stay exact however a store reads what a batch replaces.
func testLargeBatches(t *testing.T, open OpenFunc) {
	rng := rand.New(rand.NewPCG(7, 8))
	var muts []fold.Mutation
	for _, b := range RandomLog(rng, 20000, 300, 64, 25) {
		muts = append(muts, b.Muts...)
	}
	s := openT(t, open, t.TempDir())
	m := NewModel()
	for i := 0; len(muts) > 0; i++ {
		size := min([]int{257, 1000, 3000}[i%3], len(muts))
		b := Batch{Muts: muts[:size], State: fold.State{Cursor: muts[size-1].Revision}}
		muts = muts[size:]
		m.Apply(b)
		mustApply(t, s, b)
		RequireEqual(t, s, m)
	}
}
