package fold_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstream-dev/slipstream/internal/testutil/benchdata"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/pebble"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// BenchmarkPropagation measures, in one process, how long a put takes to become visible
// through the fold's Get, against how long it takes to reach a raw jetstream ordered
// consumer (DeliverNew, Consume callback) on the same stream: both watch the same puts at
// the same time. Puts go to 500 keys at 1,000/s (open loop) for SLIPSTREAM_BENCH_SECONDS
// (default 5); each latency runs from just before the Put call. The fold is a pebble store
// with its default durability (fsync on every apply) and the loop's default batching
// (10 ms / 100 updates); an update counts as visible when the Applied callback for its
// batch runs and Get returns its revision.
func BenchmarkPropagation(b *testing.B) {
	seconds := 5
	if v := os.Getenv("SLIPSTREAM_BENCH_SECONDS"); v != "" {
		s, err := strconv.Atoi(v)
		if err != nil || s <= 0 {
			b.Fatalf("SLIPSTREAM_BENCH_SECONDS=%q: want a positive integer", v)
		}
		seconds = s
	}
	const rate, keys = 1000, 500
	total := seconds * rate
	srv, conn, err := benchdata.Server()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bucket, err := conn.CreateBucket(ctx, kv.BucketConfig{Name: "prop"})
	if err != nil {
		b.Fatal(err)
	}
	store, err := pebble.Open(b.TempDir(), pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()

	var mu sync.Mutex
	sent := make([]time.Time, total)
	rawAt := make([]time.Time, total)
	foldAt := make([]time.Time, total)
	index := func(val []byte) (int, bool) {
		i, err := strconv.Atoi(string(val))
		return i, err == nil && i >= 0 && i < total
	}
	obs := &visibleObserver{store: store, synced: make(chan struct{}), at: func(u kv.Update, t time.Time) error {
		i, ok := index(u.Value)
		if !ok {
			return fmt.Errorf("update %s with value %q that no put wrote", u.Key, u.Value)
		}
		mu.Lock()
		foldAt[i] = t
		mu.Unlock()
		return nil
	}}
	loop := fold.NewLoop(bucket, store, fold.LoopConfig{Observer: obs})
	loopDone := make(chan error, 1)
	go func() {
		_, err := loop.Run(ctx)
		loopDone <- err
	}()
	select {
	case <-obs.synced:
	case err := <-loopDone:
		b.Fatalf("loop ended before Synced: %v", err)
	case <-time.After(time.Minute):
		b.Fatal("fold not synced within a minute")
	}
	cons, err := conn.JetStream().OrderedConsumer(ctx, bucket.Stream(), jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		t := time.Now()
		if i, ok := index(m.Data()); ok {
			mu.Lock()
			rawAt[i] = t
			mu.Unlock()
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()

	b.ResetTimer()
	start := time.Now()
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
			time.Sleep(d)
		}
		mu.Lock()
		sent[i] = time.Now()
		mu.Unlock()
		if _, err := bucket.Put(ctx, fmt.Sprintf("route.svc%03d", i%keys), []byte(strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		seen := 0
		for i := range total {
			if !rawAt[i].IsZero() && !foldAt[i].IsZero() {
				seen++
			}
		}
		mu.Unlock()
		if seen == total {
			break
		}
		if err := obs.failure(); err != nil {
			b.Fatal(err)
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d puts reached both the fold and the raw consumer within 30s", seen, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	if err := obs.failure(); err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	foldLat, rawLat := make([]time.Duration, total), make([]time.Duration, total)
	for i := range total {
		foldLat[i], rawLat[i] = foldAt[i].Sub(sent[i]), rawAt[i].Sub(sent[i])
	}
	mu.Unlock()
	slices.Sort(foldLat)
	slices.Sort(rawLat)
	q := func(ds []time.Duration, p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "writes/s")
	b.ReportMetric(q(foldLat, 0.50), "fold-p50-ms")
	b.ReportMetric(q(foldLat, 0.99), "fold-p99-ms")
	b.ReportMetric(q(rawLat, 0.50), "raw-p50-ms")
	b.ReportMetric(q(rawLat, 0.99), "raw-p99-ms")
}

// visibleObserver stamps each applied update after checking that Get returns it.
type visibleObserver struct {
	store  fold.Store
	synced chan struct{}
	once   sync.Once
	at     func(u kv.Update, t time.Time) error
	mu     sync.Mutex
	err    error
}

func (o *visibleObserver) Applied(_ fold.Progress, batch []kv.Update) {
	t := time.Now()
	for _, u := range batch {
		if u.Op != kv.OpPut {
			continue
		}
		e, ok, err := o.store.Get(u.Key)
		if err == nil && (!ok || e.Revision < u.Revision) {
			err = fmt.Errorf("Get(%s) after its batch was applied: ok=%v revision %d, want >= %d", u.Key, ok, e.Revision, u.Revision)
		}
		if err == nil {
			err = o.at(u, t)
		}
		if err != nil {
			o.mu.Lock()
			if o.err == nil {
				o.err = err
			}
			o.mu.Unlock()
		}
	}
}

func (o *visibleObserver) Event(e fold.Event) {
	if e.Kind == fold.EventSynced {
		o.once.Do(func() { close(o.synced) })
	}
}

func (o *visibleObserver) failure() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}
