package foldtest

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// OpenFunc opens (creating if needed) a store in dir, failing t on error.
type OpenFunc func(t *testing.T, dir string) fold.Store

// CrashHook runs batches against a fresh store of the backend, simulates crashes at points
// of its choosing, reopens each crash image and calls check on it. check asserts that the
// reopened store holds exactly the first k batches for some lo <= k <= hi, where k is read
// from its cursor (batch i carries cursor i+1): atomic Apply, cursor never ahead of data.
// The hook closes the stores it opens.
type CrashHook func(t *testing.T, batches []Batch, check func(s fold.Store, lo, hi int))

// CorruptHook damages the closed store in dir, for example by flipping bytes in the middle
// of its files.
type CorruptHook func(t *testing.T, dir string, rng *rand.Rand)

// Hooks are the optional backend-specific parts of the suite.
type Hooks struct {
	// OpenErr opens a store returning the error instead of failing (corruption tests).
	OpenErr func(dir string) (fold.Store, error)
	Crash   CrashHook
	Corrupt CorruptHook // needs OpenErr
}

// Verifier is implemented by stores with a full integrity check; it returns an error
// matching fold.ErrCorrupted when the store is damaged.
type Verifier interface {
	Verify() error
}

// RunStoreTests runs the conformance suite against the backend that open creates.
func RunStoreTests(t *testing.T, open OpenFunc, hooks ...Hooks) {
	var h Hooks
	if len(hooks) > 0 {
		h = hooks[0]
	}
	tests := []struct {
		name string
		fn   func(*testing.T, OpenFunc)
	}{
		{"ApplyAndRead", testApplyAndRead},
		{"TombstonesAndForget", testTombstonesAndForget},
		{"Range", testRange},
		{"CursorRegression", testCursorRegression},
		{"StatsExactAfterResync", testStatsAfterResync},
		{"InvalidMutation", testInvalidMutation},
		{"ReopenEquality", testReopenEquality},
		{"PureFunctionOfLog", testPureFunction},
		{"LargeBatches", testLargeBatches},
		{"LargeValues", testLargeValues},
		{"ManyKeys", testManyKeys},
		{"SnapshotIsolation", testSnapshotIsolation},
		{"ConcurrentReadersDuringApply", testConcurrentReaders},
		{"ClosedStore", testClosed},
		{"Relocate", testRelocate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
	t.Run("CrashAtomicity", func(t *testing.T) {
		if h.Crash == nil {
			t.Skip("backend provides no crash hook")
		}
		testCrash(t, h.Crash)
	})
	t.Run("CorruptionDetected", func(t *testing.T) {
		if h.Corrupt == nil || h.OpenErr == nil {
			t.Skip("backend provides no corruption hook")
		}
		testCorruption(t, open, h)
	})
}

// openT opens dir and closes the store when the test ends.
func openT(t *testing.T, open OpenFunc, dir string) fold.Store {
	s := open(t, dir)
	t.Cleanup(func() { s.Close() })
	return s
}

func mustApply(t testing.TB, s fold.Store, b Batch) {
	t.Helper()
	if err := s.Apply(b.Muts, b.State); err != nil {
		t.Fatalf("apply at cursor %d: %v", b.State.Cursor, err)
	}
}

func verify(t testing.TB, s fold.Store) {
	t.Helper()
	if v, ok := s.(Verifier); ok {
		if err := v.Verify(); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}
}

func isCorrupted(err error) bool { return errors.Is(err, fold.ErrCorrupted) }
