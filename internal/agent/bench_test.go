package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends"
)

// BenchmarkGetHandler measures the server-side cost of GET /v1/keys/{key} (routing, checks,
// metrics, pebble read, response) without the network, over a 100k-key pebble fold.
func BenchmarkGetHandler(b *testing.B) {
	s, err := backends.Open(b.TempDir(), backends.Config{Backend: "pebble"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const keys = 100_000
	val := make([]byte, 200)
	var muts []fold.Mutation
	for i := range keys {
		muts = append(muts, fold.Mutation{Op: fold.MutPut, Key: fmt.Sprintf("route.k%08d", i), Value: val, Revision: uint64(i + 1)})
	}
	if err := s.Apply(muts, fold.State{Cursor: keys}); err != nil {
		b.Fatal(err)
	}
	m := newMetrics()
	tr := newTracker(Config{}, time.Now, nil)
	tr.storeOpened(s.State())
	h := newAPI(apiConfig{Store: func() fold.Store { return s }, Tracker: tr, Ring: newRing(16, 1<<20, keys), Metrics: m, MaxWatchers: 1})
	reqs := make([]*http.Request, 1024)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, fmt.Sprintf("/v1/keys/route.k%08d", (i*7919)%keys), nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, reqs[i%len(reqs)])
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
