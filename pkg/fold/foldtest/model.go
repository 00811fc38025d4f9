package foldtest

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// Batch is one Apply call.
type Batch struct {
	Muts  []fold.Mutation
	State fold.State
}

// Model is the reference fold: what a store must hold after the same mutations.
type Model struct {
	Entries map[string]fold.Entry
	State   fold.State
}

// NewModel returns an empty model.
func NewModel() *Model { return &Model{Entries: map[string]fold.Entry{}} }

// Apply folds b into m.
func (m *Model) Apply(b Batch) {
	for _, mu := range b.Muts {
		switch mu.Op {
		case fold.MutPut:
			m.Entries[mu.Key] = fold.Entry{Key: mu.Key, Value: bytes.Clone(mu.Value), Revision: mu.Revision, Live: true}
		case fold.MutDelete:
			m.Entries[mu.Key] = fold.Entry{Key: mu.Key, Revision: mu.Revision}
		case fold.MutForget:
			delete(m.Entries, mu.Key)
		}
	}
	m.State = b.State
}

// Clone copies m.
func (m *Model) Clone() *Model {
	return &Model{Entries: maps.Clone(m.Entries), State: m.State}
}

// Sorted returns the entries in key order.
func (m *Model) Sorted() []fold.Entry {
	out := make([]fold.Entry, 0, len(m.Entries))
	for _, k := range slices.Sorted(maps.Keys(m.Entries)) {
		out = append(out, m.Entries[k])
	}
	return out
}

// Stats returns the statistics a store holding m must report (DiskBytes aside).
func (m *Model) Stats() fold.Stats {
	var s fold.Stats
	for _, e := range m.Entries {
		if e.Live {
			s.Live++
			s.LiveBytes += uint64(len(e.Key) + len(e.Value))
		} else {
			s.Tombstones++
		}
	}
	return s
}

// Prefixes returns the models after each prefix of batches: Prefixes(bs)[k] holds the
// first k batches.
func Prefixes(bs []Batch) []*Model {
	out := []*Model{NewModel()}
	for _, b := range bs {
		m := out[len(out)-1].Clone()
		m.Apply(b)
		out = append(out, m)
	}
	return out
}

// Dump reads every entry of r, tombstones included, in Range order.
func Dump(r fold.Reader) ([]fold.Entry, error) {
	var out []fold.Entry
	for e, err := range r.Range("", true) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Diff describes how got differs from want ("" when equal). Nil and empty values are
// equal; tombstones carry no value.
func Diff(got, want []fold.Entry) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		switch {
		case i >= len(got):
			return fmt.Sprintf("missing entry %d %q", i, want[i].Key)
		case i >= len(want):
			return fmt.Sprintf("extra entry %d %q", i, got[i].Key)
		}
		g, w := got[i], want[i]
		if g.Key != w.Key || g.Revision != w.Revision || g.Live != w.Live || !bytes.Equal(g.Value, w.Value) {
			return fmt.Sprintf("entry %d: got {%q rev %d live %v %d bytes}, want {%q rev %d live %v %d bytes}",
				i, g.Key, g.Revision, g.Live, len(g.Value), w.Key, w.Revision, w.Live, len(w.Value))
		}
	}
	return ""
}

// RequireEqual fails t unless r holds exactly m: contents, revisions, state and stats.
func RequireEqual(t testing.TB, r fold.Reader, m *Model) {
	t.Helper()
	got, err := Dump(r)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	if d := Diff(got, m.Sorted()); d != "" {
		t.Fatalf("contents differ from the model at cursor %d: %s", m.State.Cursor, d)
	}
	if st := r.State(); st != m.State {
		t.Fatalf("state = %+v, want %+v", st, m.State)
	}
	s, err := r.Stats()
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	s.DiskBytes = 0
	// While a resync is in progress a store may keep approximate counts (the contract lets
	// it recount when the resync ends; testStatsAfterResync checks that).
	if want := m.Stats(); s != want && !m.State.Resyncing {
		t.Fatalf("stats = %+v, want %+v", s, want)
	}
}

// RandomLog generates n mutations over a key space of keys keys (puts with values of up to
// maxValue bytes, deletes and forgets) with increasing revisions, cut into batches of 1 to
// maxBatch mutations whose cursor is their last revision.
func RandomLog(rng *rand.Rand, n, keys, maxValue, maxBatch int) []Batch {
	var out []Batch
	var cur []fold.Mutation
	for rev := uint64(1); rev <= uint64(n); rev++ {
		m := fold.Mutation{Key: fmt.Sprintf("k/%03d/%d", rng.IntN(keys)%17, rng.IntN(keys)), Revision: rev}
		switch p := rng.IntN(100); {
		case p < 60:
			m.Op, m.Value = fold.MutPut, randBytes(rng, rng.IntN(maxValue+1))
		case p < 85:
			m.Op = fold.MutDelete
		default:
			m.Op = fold.MutForget
		}
		cur = append(cur, m)
		if len(cur) >= 1+rng.IntN(maxBatch) || rev == uint64(n) {
			out = append(out, Batch{Muts: cur, State: fold.State{Cursor: rev, Resyncing: rng.IntN(10) == 0}})
			cur = nil
		}
	}
	return out
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
