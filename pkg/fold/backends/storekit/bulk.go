package storekit

import (
	"errors"
	"fmt"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// CheckBulkEntry validates the n-th entry (from 0) of a bulk load whose previous key was
// last: a valid key and value, strictly after last, a revision, no value on a tombstone.
// Errors match ErrInvalidMutation.
func CheckBulkEntry(e fold.Entry, last []byte, n int) error {
	op := fold.MutPut
	if !e.Live {
		op = fold.MutDelete
	}
	if err := CheckMutations([]fold.Mutation{{Op: op, Key: e.Key, Value: e.Value}}); err != nil {
		return fmt.Errorf("entry %d: %w", n, err)
	}
	switch {
	case n > 0 && e.Key <= string(last):
		return fmt.Errorf("%w: entry %d: key %q not after %q", ErrInvalidMutation, n, e.Key, last)
	case e.Revision == 0:
		return fmt.Errorf("%w: entry %d: key %q at revision 0", ErrInvalidMutation, n, e.Key)
	case !e.Live && len(e.Value) > 0:
		return fmt.Errorf("%w: entry %d: tombstone %q with a value", ErrInvalidMutation, n, e.Key)
	}
	return nil
}

// ErrNotEmpty: a bulk load was asked of a store that holds something (a cursor or keys).
var ErrNotEmpty = errors.New("fold: bulk load into a store that is not empty")
