package export

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

var errInjected = errors.New("injected swap failure")

// failSwaps makes every swap fail (as a rename can, e.g. EIO) until the test ends.
func failSwaps(t *testing.T) {
	swapHook = func(string, string) (*swap, error) { return nil, errInjected }
	t.Cleanup(func() { swapHook = swapDirs })
}

// replaceFixture is an old fold in dir (cursor 5, key k.old) and a staged export of
// another fold (cursor 9, key k.new).
func replaceFixture(t *testing.T, open OpenStore) (dir string, old fold.Store, staged *Staged) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "fold")
	old, err := open(dir)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, old, 5, []fold.Entry{live("k.old", "1", 5)})
	return dir, old, stageNew(t, dir, open)
}

// stageNew stages an export at cursor 9 holding k.new for the fold in dir.
func stageNew(t *testing.T, dir string, open OpenStore) *Staged {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Write(&buf, newSliceFold(9, live("k.new", "2", 9)), suiteMeta()); err != nil {
		t.Fatal(err)
	}
	staged, err := Stage(context.Background(), &buf, StagingDir(dir), StageOptions{Expect: ExpectFold("orders", suiteScope), Open: open})
	if err != nil {
		t.Fatal(err)
	}
	return staged
}

func requireOldFold(t *testing.T, st fold.Store) {
	t.Helper()
	if st == nil {
		t.Fatal("no store to go on with")
	}
	if got := st.State(); got != (fold.State{Cursor: 5}) {
		t.Fatalf("store at %+v, want the old fold at cursor 5", got)
	}
	if _, ok, err := st.Get("k.old"); !ok || err != nil {
		t.Fatalf("old fold lost k.old (%v)", err)
	}
}

// When the swap fails after the old store was closed, Replace (and Seed) hand back the
// old fold reopened with the error; the staging directory is gone; a later attempt works.
func TestReplaceSwapFailureReopensOldFold(t *testing.T) {
	for name, open := range testBackends {
		t.Run(name, func(t *testing.T) {
			dir, old, staged := replaceFixture(t, open)
			failSwaps(t)
			st, err := staged.Replace(old, dir)
			if !errors.Is(err, errInjected) {
				t.Fatalf("replace = %v, want the swap's error", err)
			}
			requireOldFold(t, st)
			if _, _, err := old.Get("k.old"); !errors.Is(err, fold.ErrClosed) {
				t.Fatalf("the old store object is open (%v): Replace must have closed it", err)
			}
			if _, err := os.Stat(StagingDir(dir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("staging directory left: %v", err)
			}
			// The next attempt, from the reopened fold, recovers.
			swapHook = swapDirs
			st2, err := stageNew(t, dir, open).Replace(st, dir)
			if err != nil {
				t.Fatalf("replace after a failed one: %v", err)
			}
			defer st2.Close()
			if got := st2.State(); got != (fold.State{Cursor: 9}) {
				t.Fatalf("store at %+v, want the export's cursor 9", got)
			}
			if _, ok, _ := st2.Get("k.old"); ok {
				t.Fatal("k.old survived the replace")
			}
		})
	}
}

// When the new fold does not open after the swap, the old fold is swapped back, reopened
// and returned with the error.
func TestReplaceOpenFailurePutsOldFoldBack(t *testing.T) {
	for name, open := range testBackends {
		t.Run(name, func(t *testing.T) {
			errOpen := errors.New("injected open failure")
			failNext := false
			opener := func(d string) (fold.Store, error) {
				if failNext {
					failNext = false
					return nil, errOpen
				}
				return open(d)
			}
			dir, old, staged := replaceFixture(t, opener)
			if _, ok := staged.Store.(relocator); ok {
				// The memory store follows the rename instead of being reopened: make that
				// fail too, so the open path is taken.
				staged.Store = hideRelocate{staged.Store}
			}
			failNext = true
			st, err := staged.Replace(old, dir)
			if !errors.Is(err, errOpen) {
				t.Fatalf("replace = %v, want the open failure", err)
			}
			requireOldFold(t, st)
			defer st.Close()
			if _, err := os.Stat(StagingDir(dir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("staging directory left: %v", err)
			}
		})
	}
}

// hideRelocate hides a store's Relocate method.
type hideRelocate struct{ fold.Store }
