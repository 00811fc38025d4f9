package foldtest

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// BenchKeys returns the key count for benchmarks: SLIPSTREAM_BENCH_KEYS, else def.
func BenchKeys(def int) int {
	if n, err := strconv.Atoi(os.Getenv("SLIPSTREAM_BENCH_KEYS")); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchKey is the i-th benchmark key (17 bytes).
func BenchKey(i int) string { return fmt.Sprintf("node/%012d", i) }

// Fill writes keys 0..n-1 with valueLen-byte values in batches of batch keys, cursor = the
// number of keys written.
func Fill(tb testing.TB, s fold.Store, n, valueLen, batch int) {
	tb.Helper()
	val := make([]byte, valueLen)
	for i := range val {
		val[i] = byte(i)
	}
	muts := make([]fold.Mutation, 0, batch)
	// Into an empty store every key is new, as in a first state sync.
	st, err := s.Stats()
	if err != nil {
		tb.Fatal(err)
	}
	var prior fold.Prior
	if st.Live+st.Tombstones == 0 {
		prior = fold.Absent
	}
	for i := 0; i < n; {
		muts = muts[:0]
		for ; len(muts) < batch && i < n; i++ {
			muts = append(muts, fold.Mutation{Op: fold.MutPut, Key: BenchKey(i), Value: val, Revision: uint64(i + 1), Prior: prior})
		}
		if err := s.Apply(muts, fold.State{Cursor: uint64(i)}); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchApply measures Apply of batches of batch keys with valueLen-byte values over a key
// space of keys keys (overwrites once it wraps), reporting keys/s.
func BenchApply(b *testing.B, s fold.Store, keys, batch, valueLen int) {
	val := make([]byte, valueLen)
	muts := make([]fold.Mutation, batch)
	cursor := s.State().Cursor
	b.SetBytes(int64(batch * (valueLen + 17)))
	b.ResetTimer()
	next := 0
	for range b.N {
		for j := range muts {
			cursor++
			muts[j] = fold.Mutation{Op: fold.MutPut, Key: BenchKey(next % keys), Value: val, Revision: cursor}
			next++
		}
		if err := s.Apply(muts, fold.State{Cursor: cursor}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
}

// BenchGet measures Get of random present keys among n, reporting p50 and p99 latency.
// As the same-run baseline it also reports floor-p99-us, the p99 of as many runs of a
// pure-CPU loop (no memory traffic, no system call, no allocation) sized to the Get's p50:
// what this machine's interrupts, preemption and steal time alone make of an operation
// that long. A p99 near the floor cannot be improved by the read path.
func BenchGet(b *testing.B, s fold.Store, n int) {
	lat := make([]time.Duration, 0, b.N)
	x := uint64(88172645463325252)
	b.ResetTimer()
	for range b.N {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		k := BenchKey(int(x % uint64(n)))
		t0 := time.Now()
		_, ok, err := s.Get(k)
		lat = append(lat, time.Since(t0))
		if err != nil || !ok {
			b.Fatalf("Get(%s) = %v %v", k, ok, err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	p50 := lat[len(lat)/2]
	b.ReportMetric(float64(p50.Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-us")
	floor := spinLatencies(spinRounds(p50), len(lat))
	b.ReportMetric(float64(floor[len(floor)/2].Nanoseconds())/1e3, "floor-p50-us")
	b.ReportMetric(float64(floor[len(floor)*99/100].Nanoseconds())/1e3, "floor-p99-us")
}

// spinSink keeps spin's result alive.
var spinSink uint64

// spin runs rounds steps of a linear congruential generator in registers.
func spin(rounds int) {
	x := spinSink | 1
	for range rounds {
		x = x*6364136223846793005 + 1442695040888963407
	}
	spinSink = x
}

// spinRounds calibrates spin: the rounds whose median duration is about d.
func spinRounds(d time.Duration) int {
	const probe = 1 << 16
	lat := spinLatencies(probe, 101)
	perRound := float64(lat[len(lat)/2].Nanoseconds()) / probe
	return max(1, int(float64(d.Nanoseconds())/perRound))
}

// spinLatencies times count runs of spin(rounds), sorted.
func spinLatencies(rounds, count int) []time.Duration {
	lat := make([]time.Duration, count)
	for i := range lat {
		t0 := time.Now()
		spin(rounds)
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	return lat
}
