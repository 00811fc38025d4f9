package fold

import (
	"iter"
	"sync"

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

// recordingState is the FoldState of a verified resume (VerifyResume): it remembers what
// each lookup found, and the loop hands that to the store with the key's first mutation
// (Mutation.Prior), so a store that reads what it replaces does not read the delta's
// entries a second time. Holds is called from several goroutines.
type recordingState struct {
	foldState
	mu     sync.Mutex
	priors map[string]Prior // nil once stopped
}

func (f *recordingState) Holds(key string) (bool, error) {
	p, err := LookupPrior(f.r, key)
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	if f.priors != nil {
		f.priors[key] = p
	}
	f.mu.Unlock()
	return p.Exists, nil
}

// LookupPrior is r's Prior for key: through PriorLooker when r has it, else from Lookup.
func LookupPrior(r Reader, key string) (Prior, error) {
	if pl, ok := r.(PriorLooker); ok {
		return pl.LookupPrior(key)
	}
	e, ok, err := r.Lookup(key)
	if err != nil {
		return Prior{}, err
	}
	return PriorOf(e, ok), nil
}

// stop ends the recording and returns what was recorded.
func (f *recordingState) stop() map[string]Prior {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.priors
	f.priors = nil
	return p
}
