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
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-us")
}
