package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends"
)

// Benchmarks of the targets, against the agent binary:
//
//	go test ./test/agent -run '^$' -bench . -benchtime 1x
//
// SLIPSTREAM_BENCH_SECONDS (default 5) sets the measured duration of each; SLIPSTREAM_BENCH_KEYS
// (default 1000000) the size of the read benchmark's fold.

func benchSeconds() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("SLIPSTREAM_BENCH_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 5 * time.Second
}

// quantiles reports p50, p99, p99.9 and max of ds in milliseconds.
func quantiles(b *testing.B, what string, ds []time.Duration) {
	slices.Sort(ds)
	q := func(p float64) float64 {
		if len(ds) == 0 {
			return 0
		}
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.50), what+"-p50-ms")
	b.ReportMetric(q(0.99), what+"-p99-ms")
	b.ReportMetric(q(0.999), what+"-p99.9-ms")
	b.ReportMetric(q(1), what+"-max-ms")
	b.Logf("%s: n=%d p50=%.3fms p99=%.3fms p99.9=%.3fms max=%.3fms", what, len(ds), q(0.5), q(0.99), q(0.999), q(1))
}

// BenchmarkPropagation: puts at 1,000/s; each put's latency is from just before the Put call
// until a GET /v1/keys/{key} on the agent returns its revision (the GET is sent when the
// agent's watch stream reports the update applied). Default batching.
func BenchmarkPropagation(b *testing.B) {
	n := harness.StartNATS(b)
	conn := proctest.Connect(b, n.URL())
	bk := proctest.CreateBucket(b, conn, "prop")
	args := []string{"--nats-url", n.URL(), "--bucket", "prop", "--data-dir", b.TempDir()}
	if w := os.Getenv("SLIPSTREAM_BENCH_BATCH_WINDOW"); w != "" {
		args = append(args, "--batch-window", w) // default batching unless asked
	}
	a := harness.StartAgent(b, args...)
	a.WaitCaughtUp(b, bk, 20*time.Second)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.BaseURL()+"/v1/watch", nil)
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()

	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	var missed int
	done := make(chan struct{})
	var watchLat []time.Duration
	var getters sync.WaitGroup
	sem := make(chan struct{}, 8)
	go func() { // watch -> GET (concurrently, so a slow GET never delays the next) -> latency
		defer close(done)
		defer getters.Wait()
		for line := range ndjsonLines(resp.Body) {
			if line.Op != "put" {
				continue
			}
			mu.Lock()
			t0, ok := sent[string(line.Value)]
			if ok {
				watchLat = append(watchLat, time.Since(t0))
			}
			mu.Unlock()
			if !ok {
				continue
			}
			sem <- struct{}{}
			getters.Add(1)
			go func() {
				defer func() { <-sem; getters.Done() }()
				r, err := hc.Get(a.BaseURL() + "/v1/keys/" + line.Key)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, r.Body)
				r.Body.Close()
				rev, _ := strconv.ParseUint(r.Header.Get("X-Slipstream-Revision"), 10, 64)
				mu.Lock()
				if rev >= line.Revision {
					lat = append(lat, time.Since(t0))
				} else {
					missed++
				}
				mu.Unlock()
			}()
		}
	}()
	b.ResetTimer()
	start := time.Now()
	total := int(benchSeconds() / time.Millisecond)
	writes := 0
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * time.Millisecond)); d > 0 {
			time.Sleep(d) // open-loop pacing at 1,000 writes/s
		}
		val := strconv.Itoa(i)
		key := fmt.Sprintf("route.svc%03d", i%500)
		mu.Lock()
		sent[val] = time.Now()
		mu.Unlock()
		if _, err := bk.Put(ctx, key, []byte(val)); err != nil {
			b.Fatal(err)
		}
		writes++
	}
	elapsed := time.Since(start)
	b.StopTimer()
	proctest.Eventually(b, 10*time.Second, "every write observed", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(lat)+missed < writes {
			return fmt.Errorf("%d of %d", len(lat)+missed, writes)
		}
		return nil
	})
	cancel()
	<-done
	b.ReportMetric(float64(writes)/elapsed.Seconds(), "writes/s")
	mu.Lock()
	defer mu.Unlock()
	if missed > 0 {
		b.Errorf("%d GETs after the watch reported the update did not see it", missed)
	}
	quantiles(b, "applied", watchLat)
	quantiles(b, "propagation", lat)
	if m, err := http.Get(a.BaseURL() + "/metrics"); err == nil {
		body, _ := io.ReadAll(m.Body)
		m.Body.Close()
		var hist []string
		for _, l := range strings.Split(string(body), "\n") {
			if rest, ok := strings.CutPrefix(l, "slipstream_batch_apply_duration_seconds_bucket{le="); ok {
				hist = append(hist, strings.ReplaceAll(rest, `"} `, ":"))
			}
		}
		b.Logf("batch apply duration, cumulative per bucket (le seconds:batches): %s", strings.Join(hist, " "))
	}
}

// BenchmarkReadAPI: GET /v1/keys/{key} for random keys at 5,000/s (open loop, 16 workers,
// keep-alive) against a pebble fold of SLIPSTREAM_BENCH_KEYS keys. The fold is written
// directly into the store and the agent serves it with NATS unreachable (Degraded: reads
// are marked stale but take the same path).
func BenchmarkReadAPI(b *testing.B) {
	keys := 1_000_000
	if s, err := strconv.Atoi(os.Getenv("SLIPSTREAM_BENCH_KEYS")); err == nil && s > 0 {
		keys = s
	}
	dir := b.TempDir()
	fillPebble(b, dir, keys)
	a := harness.StartAgent(b, "--nats-url", fmt.Sprintf("nats://127.0.0.1:%d", proctest.FreePort(b)), "--bucket", "read", "--data-dir", dir)
	proctest.Eventually(b, 60*time.Second, "the fold served", func() error {
		r, err := http.Get(a.BaseURL() + "/v1/keys/route.k00000000")
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			return fmt.Errorf("status %d", r.StatusCode)
		}
		return nil
	})
	const rate, workers = 5000, 16
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	// run sends GETs for random keys at rate for d (open loop) and returns the latencies.
	run := func(d time.Duration) ([]time.Duration, time.Duration) {
		total := int(d.Seconds() * rate)
		jobs := make(chan struct{}, total)
		lats := make([][]time.Duration, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range jobs {
					k := fmt.Sprintf("route.k%08d", rand.IntN(keys))
					t0 := time.Now()
					r, err := hc.Get(a.BaseURL() + "/v1/keys/" + k)
					if err != nil {
						b.Errorf("GET %s: %v", k, err)
						continue
					}
					_, _ = io.Copy(io.Discard, r.Body)
					r.Body.Close()
					if r.StatusCode != 200 {
						b.Errorf("GET %s: %d", k, r.StatusCode)
						continue
					}
					lats[w] = append(lats[w], time.Since(t0))
				}
			}()
		}
		start := time.Now()
		for i := range total {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
				time.Sleep(d) // open-loop pacing of the load generator
			}
			jobs <- struct{}{}
		}
		close(jobs)
		wg.Wait()
		var all []time.Duration
		for _, l := range lats {
			all = append(all, l...)
		}
		return all, time.Since(start)
	}
	run(2 * time.Second) // warm-up: connections, block cache, the store's first compactions
	b.ResetTimer()
	all, elapsed := run(benchSeconds())
	b.StopTimer()
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "GET/s")
	b.ReportMetric(float64(keys), "keys")
	quantiles(b, "get", all)
	p50, p99 := serverQuantile(b, a, "/v1/keys/{key}", 0.5), serverQuantile(b, a, "/v1/keys/{key}", 0.99)
	b.ReportMetric(p99*1000, "server-p99-le-ms")
	b.Logf("server side (agent histogram, warm-up included): p50 <= %.3fms, p99 <= %.3fms", p50*1000, p99*1000)
}

// fillPebble writes keys route.kNNNNNNNN with ~200-byte values straight into a pebble store.
func fillPebble(b *testing.B, dir string, keys int) {
	b.Helper()
	s, err := backends.Open(dir, backends.Config{Backend: "pebble"})
	if err != nil {
		b.Fatal(err)
	}
	val := []byte(`{"host":"svc.example.com","pathPrefix":"/svc","upstreams":[{"addr":"10.0.3.218:8080","weight":93},{"addr":"10.1.3.148:8080","weight":7}],"timeoutMs":1250,"retries":2,"filters":["geo-block"]}`)
	const batch = 10000
	muts := make([]fold.Mutation, 0, batch)
	for i := 0; i < keys; i += batch {
		muts = muts[:0]
		for j := i; j < min(keys, i+batch); j++ {
			muts = append(muts, fold.Mutation{Op: fold.MutPut, Key: fmt.Sprintf("route.k%08d", j), Value: val, Revision: uint64(j + 1)})
		}
		if err := s.Apply(muts, fold.State{Cursor: uint64(min(keys, i+batch))}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}

type benchLine struct {
	Op       string `json:"op"`
	Key      string `json:"key"`
	Value    []byte `json:"value"`
	Revision uint64 `json:"revision"`
}

// ndjsonLines yields the decoded lines of a watch stream until it ends.
func ndjsonLines(r io.Reader) iter.Seq[benchLine] {
	return func(yield func(benchLine) bool) {
		dec := json.NewDecoder(r)
		for {
			var l benchLine
			if dec.Decode(&l) != nil || !yield(l) {
				return
			}
		}
	}
}

// serverQuantile reads the agent's read-latency histogram for route and returns the upper
// bound of the bucket holding quantile q (0 when unknown).
func serverQuantile(b *testing.B, a *proctest.Agent, route string, q float64) float64 {
	resp, err := http.Get(a.BaseURL() + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	type bucket struct{ le, n float64 }
	var bs []bucket
	var count float64
	prefix := `slipstream_read_request_duration_seconds_bucket{route="` + route + `",le="`
	for _, l := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			var le, n float64
			if i := strings.Index(rest, `"} `); i > 0 {
				le, _ = strconv.ParseFloat(rest[:i], 64)
				n, _ = strconv.ParseFloat(rest[i+3:], 64)
				bs = append(bs, bucket{le, n})
			}
		}
		if rest, ok := strings.CutPrefix(l, `slipstream_read_request_duration_seconds_count{route="`+route+`"} `); ok {
			count, _ = strconv.ParseFloat(rest, 64)
		}
	}
	for _, x := range bs {
		if count > 0 && x.n >= q*count {
			return x.le
		}
	}
	return 0
}
