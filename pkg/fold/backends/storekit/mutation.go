package storekit

import (
	"errors"
	"fmt"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

const (
	// MaxKeyLen is the longest key a store accepts (the memory log's key_len is a u16).
	MaxKeyLen = 1<<16 - 1
	// MaxValueLen is the largest value a store accepts (the memory log's value_len is a u32).
	MaxValueLen = 1<<32 - 1
)

// ErrInvalidMutation: Apply was handed a mutation no store can hold (unknown op, empty or
// over-long key, over-long value). Nothing of the batch is applied.
var ErrInvalidMutation = errors.New("fold: invalid mutation")

// CheckMutations validates muts. Values of MutDelete and MutForget are ignored.
func CheckMutations(muts []fold.Mutation) error {
	for i, m := range muts {
		switch {
		case m.Op < fold.MutPut || m.Op > fold.MutForget:
			return fmt.Errorf("%w: mutation %d: unknown op %d", ErrInvalidMutation, i, m.Op)
		case m.Key == "":
			return fmt.Errorf("%w: mutation %d: empty key", ErrInvalidMutation, i)
		case len(m.Key) > MaxKeyLen:
			return fmt.Errorf("%w: mutation %d: key of %d bytes exceeds %d", ErrInvalidMutation, i, len(m.Key), MaxKeyLen)
		case m.Op == fold.MutPut && uint64(len(m.Value)) > MaxValueLen:
			return fmt.Errorf("%w: mutation %d: value of %d bytes exceeds %d", ErrInvalidMutation, i, len(m.Value), uint64(MaxValueLen))
		}
	}
	return nil
}
