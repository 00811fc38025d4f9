package kv_test

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

func TestKeysAndScanPrefixes(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{History: 3})
	for _, k := range []string{"a.1", "a.2", "ab.1", "b.1", "a.x.3"} {
		e.put(t, k, "v-"+k)
	}
	e.put(t, "a.1", "v2")
	e.del(t, "a.2")
	for _, tc := range []struct{ prefix, want string }{
		{"", "[a.1 a.x.3 ab.1 b.1]"},
		{"a.", "[a.1 a.x.3]"},
		{"a", "[a.1 a.x.3 ab.1]"},
		{"a.x", "[a.x.3]"},
		{"zz.", "[]"},
	} {
		var keys []string
		for k, err := range e.b.Keys(e.ctx, tc.prefix) {
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if got := fmt.Sprint(keys); got != tc.want && !(got == "[]" && tc.want == "[]") {
			t.Errorf("Keys(%q) = %s, want %s", tc.prefix, got, tc.want)
		}
		keys = nil
		for ent, err := range e.b.Scan(e.ctx, tc.prefix) {
			if err != nil {
				t.Fatal(err)
			}
			want := "v-" + ent.Key
			if ent.Key == "a.1" {
				want = "v2"
			}
			if string(ent.Value) != want || ent.Op != kv.OpPut || ent.Revision == 0 {
				t.Errorf("Scan entry %+v", ent)
			}
			keys = append(keys, ent.Key)
		}
		sort.Strings(keys)
		if got := fmt.Sprint(keys); got != tc.want && !(got == "[]" && tc.want == "[]") {
			t.Errorf("Scan(%q) = %s, want %s", tc.prefix, got, tc.want)
		}
	}
	// Stopping early is fine.
	for _, err := range e.b.Keys(e.ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
}

// Keys and Scan stream a large bucket (SLIPSTREAM_TEST_KEYS overrides the 200k default).
func TestKeysAndScanLarge(t *testing.T) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("SLIPSTREAM_TEST_KEYS")); err == nil && v > 0 {
		n = v
	}
	if testing.Short() {
		n = 20_000
	}
	e := newEnv(t, kv.BucketConfig{})
	start := time.Now()
	fill(t, e.conn, e.b.Name(), "k.%07d", n, 32)
	t.Logf("fill %d keys: %s", n, time.Since(start))
	start = time.Now()
	seen := make([]bool, n)
	count := 0
	for k, err := range e.b.Keys(e.ctx, "k.") {
		if err != nil {
			t.Fatal(err)
		}
		var i int
		if _, err := fmt.Sscanf(k, "k.%07d", &i); err != nil || seen[i] {
			t.Fatalf("bad or duplicate key %q", k)
		}
		seen[i] = true
		count++
	}
	if count != n {
		t.Fatalf("Keys listed %d, want %d", count, n)
	}
	t.Logf("keys: %s", time.Since(start))
	start = time.Now()
	count = 0
	for ent, err := range e.b.Scan(e.ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		if len(ent.Value) != 32 {
			t.Fatalf("value of %q has %d bytes", ent.Key, len(ent.Value))
		}
		count++
	}
	if count != n {
		t.Fatalf("Scan yielded %d, want %d", count, n)
	}
	t.Logf("scan: %s", time.Since(start))
}
