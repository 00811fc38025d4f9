package agent

import (
	"iter"
	"sort"
	"strings"
	"sync"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// mapStore is a minimal in-memory fold.Store for API unit tests (a fake of our own narrow
// interface; the process-level tests use the real backends).
type mapStore struct {
	mu sync.RWMutex
	m  map[string]fold.Entry
	st fold.State
}

var _ fold.Store = (*mapStore)(nil)

func newMapStore() *mapStore { return &mapStore{m: map[string]fold.Entry{}} }

func (s *mapStore) State() fold.State { s.mu.RLock(); defer s.mu.RUnlock(); return s.st }

func (s *mapStore) Get(k string) (fold.Entry, bool, error) {
	e, ok, err := s.Lookup(k)
	if !e.Live {
		return fold.Entry{}, false, err
	}
	return e, ok, err
}

func (s *mapStore) Lookup(k string) (fold.Entry, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.m[k]
	return e, ok, nil
}

func (s *mapStore) Range(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	s.mu.RLock()
	var es []fold.Entry
	for k, e := range s.m {
		if strings.HasPrefix(k, prefix) && (tombstones || e.Live) {
			es = append(es, e)
		}
	}
	s.mu.RUnlock()
	sort.Slice(es, func(i, j int) bool { return es[i].Key < es[j].Key })
	return func(yield func(fold.Entry, error) bool) {
		for _, e := range es {
			if !yield(e, nil) {
				return
			}
		}
	}
}

func (s *mapStore) Stats() (fold.Stats, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var st fold.Stats
	for k, e := range s.m {
		if e.Live {
			st.Live++
			st.LiveBytes += uint64(len(k) + len(e.Value))
		} else {
			st.Tombstones++
		}
	}
	return st, nil
}

func (s *mapStore) Apply(muts []fold.Mutation, st fold.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range muts {
		switch m.Op {
		case fold.MutPut:
			s.m[m.Key] = fold.Entry{Key: m.Key, Value: m.Value, Revision: m.Revision, Live: true}
		case fold.MutDelete:
			s.m[m.Key] = fold.Entry{Key: m.Key, Revision: m.Revision}
		case fold.MutForget:
			delete(s.m, m.Key)
		}
	}
	s.st = st
	return nil
}

func (s *mapStore) Snapshot() (fold.Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := &mapStore{m: make(map[string]fold.Entry, len(s.m)), st: s.st}
	for k, e := range s.m {
		c.m[k] = e
	}
	return c, nil
}

func (s *mapStore) Flush() error { return nil }
func (s *mapStore) Close() error { return nil }
