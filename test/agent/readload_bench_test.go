package agent_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstream-dev/slipstream/internal/testutil/benchdata"
	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
)

// BenchmarkReadAPIUnderLoad: GET /v1/keys/{key} for random keys at 5,000/s (open loop, 16
// keep-alive workers) against an agent whose pebble fold of SLIPSTREAM_BENCH_KEYS keys
// (default 1M, 256-byte values, filled through NATS and caught up by the agent) applies a
// stream of 1,000 puts/s to random keys while it serves. The baseline is a plain net/http
// server in this process answering the same GETs from a Go map of the same keys and values,
// measured right after under the same write stream (the agent keeps applying it). Each
// phase runs SLIPSTREAM_BENCH_SECONDS (default 5) after a 2-second warm-up.
func BenchmarkReadAPIUnderLoad(b *testing.B) {
	keys := benchdata.Keys(1_000_000)
	n := harness.StartNATS(b)
	conn := proctest.Connect(b, n.URL())
	bk := proctest.CreateBucket(b, conn, "readload")
	names := make([]string, keys)
	for i := range names {
		names[i] = benchdata.Key(i)
	}
	if err := benchdata.Publish(conn, "readload", names); err != nil {
		b.Fatal(err)
	}
	a := harness.StartAgent(b, "--nats-url", n.URL(), "--bucket", "readload", "--data-dir", b.TempDir(), "--log-level", "info")
	a.WaitCaughtUp(b, bk, 5*time.Minute)

	plain := make(map[string][]byte, keys)
	for i, k := range names {
		plain[k] = benchdata.Value(i)
	}
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := plain[strings.TrimPrefix(r.URL.Path, "/v1/keys/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(v)
	}))
	defer ps.Close()

	// The write stream: 1,000 puts/s to random keys until stop, acknowledged asynchronously.
	js, err := jetstream.New(conn.NATS(), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	var writes atomic.Int64
	writerDone := make(chan error, 1)
	go func() {
		start := time.Now()
		for i := 0; ; i++ {
			select {
			case <-stop:
				writerDone <- nil
				return
			case <-time.After(time.Until(start.Add(time.Duration(i) * time.Millisecond))):
			}
			if _, err := js.PublishAsync("$KV.readload."+names[rand.IntN(keys)], benchdata.Value(i)); err != nil {
				writerDone <- err
				return
			}
			writes.Add(1)
		}
	}()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	get := func(base string) func(key string) error {
		return func(key string) error {
			r, err := hc.Get(base + "/v1/keys/" + key)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: status %d", key, r.StatusCode)
			}
			return nil
		}
	}
	d := benchSeconds()
	b.ResetTimer()
	writesBefore := writes.Load()
	phaseStart := time.Now()
	openLoopGets(b, names, get(a.BaseURL()), 2*time.Second)
	agentLat, agentElapsed := openLoopGets(b, names, get(a.BaseURL()), d)
	agentWrites := float64(writes.Load()-writesBefore) / time.Since(phaseStart).Seconds()
	openLoopGets(b, names, get(ps.URL), 2*time.Second)
	plainLat, _ := openLoopGets(b, names, get(ps.URL), d)
	b.StopTimer()
	close(stop)
	if err := <-writerDone; err != nil {
		b.Fatal(err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("write stream not acknowledged within a minute")
	}
	a.WaitCaughtUp(b, bk, time.Minute) // the agent applied the whole write stream
	b.ReportMetric(float64(keys), "keys")
	b.ReportMetric(float64(len(agentLat))/agentElapsed.Seconds(), "GET/s")
	b.ReportMetric(agentWrites, "writes/s")
	quantiles(b, "get", agentLat)
	quantiles(b, "plain", plainLat)
	if hwm, err := vmHWM(a.Pid()); err == nil {
		b.ReportMetric(hwm, "agent-rss-MiB")
	}
}

// openLoopGets sends GETs for random keys at 5,000/s from 16 workers for d and returns their
// latencies and the time taken. A failed GET fails the benchmark.
func openLoopGets(b *testing.B, keys []string, get func(string) error, d time.Duration) ([]time.Duration, time.Duration) {
	const rate, workers = 5000, 16
	total := int(d.Seconds() * rate)
	jobs := make(chan struct{}, total)
	lats := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				k := keys[rand.IntN(len(keys))]
				t0 := time.Now()
				if err := get(k); err != nil {
					b.Error(err)
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		}()
	}
	start := time.Now()
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
			time.Sleep(d)
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

// vmHWM returns the peak resident set of process pid in MiB.
func vmHWM(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.Atoi(f[1])
			return float64(kb) / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}
