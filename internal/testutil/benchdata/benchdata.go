// Package benchdata builds the large buckets benchmarks run against: a real nats-server
// (outliving any one testing.B) holding a KV bucket of N keys with fixed-size values, filled
// with asynchronous publishes.
package benchdata

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// ValueSize is the size of every value the fixtures write.
const ValueSize = 256

// Keys returns SLIPSTREAM_BENCH_KEYS, or def when unset or invalid.
func Keys(def int) int {
	if v, err := strconv.Atoi(os.Getenv("SLIPSTREAM_BENCH_KEYS")); err == nil && v > 0 {
		return v
	}
	return def
}

// Median is the middle value of xs (the upper one of an even count): benchmarks that run
// rounds report it, since one round on a shared machine is a draw.
func Median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// ReportRatios reports the median of a benchmark's per-round ratios as metric name, and
// the lowest and highest as name_min and name_max (the report's bracketed range).
func ReportRatios(b *testing.B, name string, ratios []float64) {
	b.ReportMetric(Median(ratios), name)
	b.ReportMetric(slices.Min(ratios), name+"_min")
	b.ReportMetric(slices.Max(ratios), name+"_max")
}

// Key is the name of the i-th fixture key.
func Key(i int) string { return fmt.Sprintf("k.%07d", i) }

// Value is the value Publish writes for the i-th key it publishes: ValueSize bytes, the first
// one byte(i), the rest zero. Benchmarks that build a fold directly in a store use it so the
// store holds exactly what the bucket holds.
func Value(i int) []byte {
	v := make([]byte, ValueSize)
	setValue(v, i)
	return v
}

func setValue(v []byte, i int) { v[0] = byte(i) }

// started are the servers Server started and their directories, for Main to remove: a
// fixture bucket of 1M keys is about 300 MB on disk.
var started struct {
	mu    sync.Mutex
	srvs  []*natstest.Server
	conns []*kv.Conn
	dirs  []string
}

// Main runs the package's tests and benchmarks, then shuts down every server Server
// started and removes its directory. Packages using Server call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	started.mu.Lock()
	for _, c := range started.conns {
		c.Close()
	}
	for _, s := range started.srvs {
		s.Shutdown()
	}
	for _, d := range started.dirs {
		_ = os.RemoveAll(d)
	}
	started.mu.Unlock()
	os.Exit(code)
}

// Server starts a nats-server in a fresh temporary directory. The caller may shut it down
// early; Main shuts it down and removes the directory when the test binary ends.
func Server() (*natstest.Server, *kv.Conn, error) {
	dir, err := os.MkdirTemp("", "slipstream-bench-")
	if err != nil {
		return nil, nil, err
	}
	started.mu.Lock()
	started.dirs = append(started.dirs, dir)
	started.mu.Unlock()
	srv, err := natstest.StartDir(dir, natstest.Options{})
	if err != nil {
		return nil, nil, err
	}
	started.mu.Lock()
	started.srvs = append(started.srvs, srv)
	started.mu.Unlock()
	conn, err := kv.Connect(context.Background(), kv.Options{URLs: []string{srv.URL()}})
	if err != nil {
		srv.Shutdown()
		return nil, nil, err
	}
	started.mu.Lock()
	started.conns = append(started.conns, conn)
	started.mu.Unlock()
	return srv, conn, nil
}

// Fill creates bucket name and publishes keys Key(0..n-1), each with a ValueSize value.
func Fill(conn *kv.Conn, name string, n int) (*kv.Bucket, error) {
	return fill(conn, name, n, nil)
}

// FillShuffled is Fill with the keys published in a random order that seed fixes: a
// bucket whose stream order has nothing to do with its key order, as in most real ones.
func FillShuffled(conn *kv.Conn, name string, n int, seed uint64) (*kv.Bucket, error) {
	return fill(conn, name, n, rand.New(rand.NewPCG(seed, seed)))
}

func fill(conn *kv.Conn, name string, n int, shuffle *rand.Rand) (*kv.Bucket, error) {
	b, err := conn.CreateBucket(context.Background(), kv.BucketConfig{Name: name})
	if err != nil {
		return nil, err
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = Key(i)
	}
	if shuffle != nil {
		shuffle.Shuffle(n, func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	}
	return b, Publish(conn, name, keys)
}

// Publish writes a ValueSize value to every key of bucket name, asynchronously, and waits
// until the server acknowledged them all.
func Publish(conn *kv.Conn, bucket string, keys []string) error {
	js, err := jetstream.New(conn.NATS(), jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		return err
	}
	val := make([]byte, ValueSize)
	wait := func() error {
		select {
		case <-js.PublishAsyncComplete():
			return nil
		case <-time.After(time.Minute):
			return fmt.Errorf("async publishes did not complete within a minute")
		}
	}
	for i, k := range keys {
		setValue(val, i)
		if _, err := js.PublishAsync("$KV."+bucket+"."+k, val); err != nil {
			return err
		}
		if i%8192 == 8191 {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return wait()
}

// RawLastPerSubject is the baseline benchmarks compare with: a plain jetstream ordered
// consumer (DeliverLastPerSubject, Consume callback) on stream that only counts messages.
// It returns the time until want messages arrived.
func RawLastPerSubject(conn *kv.Conn, stream string, want int) (time.Duration, error) {
	start := time.Now()
	cons, err := conn.JetStream().OrderedConsumer(context.Background(), stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return 0, err
	}
	done := make(chan struct{})
	var n atomic.Int64
	cc, err := cons.Consume(func(jetstream.Msg) {
		if n.Add(1) == int64(want) {
			close(done)
		}
	})
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	select {
	case <-done:
		return time.Since(start), nil
	case <-time.After(10 * time.Minute):
		return 0, fmt.Errorf("raw consumer delivered %d of %d messages", n.Load(), want)
	}
}
