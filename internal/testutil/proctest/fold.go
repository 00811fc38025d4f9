package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/client"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Entry is one live key of a fold or a bucket (a line of `agent dump`).
type Entry struct {
	Key      string `json:"key"`
	Value    []byte `json:"value"`
	Revision uint64 `json:"revision"`
}

// Connect opens a kv connection that survives server restarts. It is closed when the test
// ends.
func Connect(t testing.TB, url string) *kv.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := kv.Connect(ctx, kv.Options{URLs: []string{url}, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// CreateBucket creates the bucket name with default settings.
func CreateBucket(t testing.TB, c *kv.Conn, name string) *kv.Bucket {
	t.Helper()
	return CreateBucketWith(t, c, kv.BucketConfig{Name: name})
}

// CreateBucketWith creates a bucket configured by cfg.
func CreateBucketWith(t testing.TB, c *kv.Conn, cfg kv.BucketConfig) *kv.Bucket {
	t.Helper()
	b, err := c.CreateBucket(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BucketState reads the bucket's live keys under prefix ("" for all) directly from NATS,
// ordered by key.
func BucketState(t testing.TB, b *kv.Bucket, prefix string) []Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []Entry
	for e, err := range b.Scan(ctx, prefix) {
		if err != nil {
			t.Fatalf("scan bucket: %v", err)
		}
		out = append(out, Entry{Key: e.Key, Value: e.Value, Revision: e.Revision})
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// DumpFold reads a stopped agent's fold in dir with `agent dump`.
func (h *Harness) DumpFold(t testing.TB, dir string) []Entry {
	t.Helper()
	code, out, errOut := h.RunAgent(t, nil, "dump", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("agent dump: exit %d: %s", code, errOut)
	}
	var es []Entry
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e Entry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("dump output: %v", err)
		}
		es = append(es, e)
	}
	return es
}

// Fold reads a running agent's fold through its read API (GET /v1/keys).
func (a *Agent) Fold(t testing.TB) []Entry {
	t.Helper()
	c, err := client.New(a.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var es []Entry
	for e, err := range c.Range(ctx, "") {
		if err != nil {
			t.Fatalf("list fold: %v", err)
		}
		es = append(es, Entry{Key: e.Key, Value: e.Value, Revision: e.Revision})
	}
	return es
}

// Diff reports how two key-ordered states differ (nil when they are equal): the number of
// keys that differ and the first few of them.
func Diff(bucket, fold []Entry) error {
	var diffs []string
	n := 0
	note := func(format string, args ...any) {
		n++
		if len(diffs) < 8 {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	i, j := 0, 0
	for i < len(bucket) || j < len(fold) {
		switch {
		case j >= len(fold) || i < len(bucket) && bucket[i].Key < fold[j].Key:
			note("fold lacks %q (bucket rev %d)", bucket[i].Key, bucket[i].Revision)
			i++
		case i >= len(bucket) || fold[j].Key < bucket[i].Key:
			note("fold has extra %q (rev %d)", fold[j].Key, fold[j].Revision)
			j++
		default:
			if bucket[i].Revision != fold[j].Revision || !bytes.Equal(bucket[i].Value, fold[j].Value) {
				note("%q: bucket rev %d, fold rev %d", bucket[i].Key, bucket[i].Revision, fold[j].Revision)
			}
			i++
			j++
		}
	}
	if n > 0 {
		return fmt.Errorf("%d keys differ: %s", n, strings.Join(diffs, "; "))
	}
	return nil
}
