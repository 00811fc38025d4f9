package fold

import (
	"iter"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// FoldState adapts a fold reader to kv.FoldState for a verified resume (the loop's own
// resumes, and seeding's check that NATS can continue from an export). A fold holds only
// keys within its scope (scope is exact), so its counts are the scope's counts.
func FoldState(r Reader) kv.FoldState { return foldState{r} }

type foldState struct{ r Reader }

func (f foldState) Count() (uint64, error) {
	st, err := f.r.Stats()
	if err != nil {
		return 0, err
	}
	return st.Live + st.Tombstones, nil
}

func (f foldState) Holds(key string) (bool, error) {
	_, ok, err := f.r.Lookup(key)
	return ok, err
}

func (f foldState) Keys() iter.Seq2[kv.KeyState, error] {
	return func(yield func(kv.KeyState, error) bool) {
		for e, err := range RangeKeys(f.r, "", true) {
			if !yield(kv.KeyState{Key: e.Key, Live: e.Live}, err) || err != nil {
				return
			}
		}
	}
}
