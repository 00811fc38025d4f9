// Package foldtest is the conformance suite every fold.Store backend passes:
// RunStoreTests checks apply and reads, tombstones and forgets, cursor rules, snapshot
// isolation, exact statistics, reopen equality, that the fold is a pure function of the
// applied mutations, concurrent reads during Apply, closed-store errors, and — through
// backend-provided hooks — atomic Apply under crashes and detection of corruption.
//
// A backend's test calls it with a function that opens (creating if needed) its store:
//
//	func TestConformance(t *testing.T) {
//		foldtest.RunStoreTests(t, func(t *testing.T, dir string) fold.Store { ... },
//			foldtest.Hooks{OpenErr: ..., Crash: ..., Corrupt: ...})
//	}
package foldtest
