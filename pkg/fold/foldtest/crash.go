package foldtest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// crashBatches are small batches with cursors 1..n, so that a store's cursor names the
// prefix of batches it must hold.
func crashBatches(rng *rand.Rand, n int) []Batch {
	log := RandomLog(rng, n*4, 30, 40, 4)
	out := make([]Batch, 0, len(log))
	for i, b := range log {
		b.State.Cursor = uint64(i + 1)
		out = append(out, b)
	}
	return out
}

// checkPrefix asserts s holds exactly the first k batches for its cursor k in [lo, hi].
func checkPrefix(t *testing.T, models []*Model, s fold.Store, lo, hi int) error {
	t.Helper()
	k := int(s.State().Cursor)
	if k < lo || k > hi || k >= len(models) {
		return fmt.Errorf("reopened at cursor %d, want a cursor in [%d, %d]", k, lo, hi)
	}
	got, err := Dump(s)
	if err != nil {
		return fmt.Errorf("dump at cursor %d: %w", k, err)
	}
	if d := Diff(got, models[k].Sorted()); d != "" {
		return fmt.Errorf("cursor %d names data that is not there: %s", k, d)
	}
	if s.State() != models[k].State {
		return fmt.Errorf("state %+v, want %+v", s.State(), models[k].State)
	}
	return nil
}

func testCrash(t *testing.T, hook CrashHook) {
	rng := rand.New(rand.NewPCG(7, 8))
	batches := crashBatches(rng, 25)
	models := Prefixes(batches)
	checks := 0
	hook(t, batches, func(s fold.Store, lo, hi int) {
		t.Helper()
		checks++
		if err := checkPrefix(t, models, s, lo, hi); err != nil {
			t.Fatalf("crash image %d: %v", checks, err)
		}
	})
	if checks == 0 {
		t.Fatal("crash hook checked no crash image")
	}
	t.Logf("%d crash images checked", checks)
}

// testCorruption damages a closed store many times; each time opening must fail with
// ErrCorrupted, or Verify or a read must report ErrCorrupted, or — when the damage hit
// nothing that matters — the store must hold exactly a state the batches produced. Wrong
// data is never acceptable, and at least some damage must be detected.
func testCorruption(t *testing.T, open OpenFunc, h Hooks) {
	rng := rand.New(rand.NewPCG(9, 10))
	batches := crashBatches(rng, 60)
	models := Prefixes(batches)
	const trials = 12
	detected := 0
	for i := range trials {
		dir := t.TempDir()
		s := open(t, dir)
		for _, b := range batches {
			mustApply(t, s, b)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		h.Corrupt(t, dir, rng)
		s, err := h.OpenErr(dir)
		if err != nil {
			if !isCorrupted(err) {
				t.Fatalf("trial %d: open of a damaged store: %v, want ErrCorrupted", i, err)
			}
			detected++
			continue
		}
		err = nil
		if v, ok := s.(Verifier); ok {
			err = v.Verify()
		}
		if err == nil {
			if err = checkPrefix(t, models, s, 0, len(batches)); err != nil && !isCorrupted(err) {
				t.Fatalf("trial %d: damaged store served wrong data: %v", i, err)
			}
		}
		if err != nil {
			if !isCorrupted(err) {
				t.Fatalf("trial %d: verify of a damaged store: %v, want ErrCorrupted", i, err)
			}
			detected++
		}
		s.Close()
	}
	if detected == 0 {
		t.Fatalf("none of %d damaged stores was detected", trials)
	}
	t.Logf("%d of %d damaged stores detected; the rest held a consistent state", detected, trials)
}
