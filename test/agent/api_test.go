package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/client"
)

// TestReadAPIMatchesBucket folds a scoped bucket with puts, deletes and purges and checks
// every key, every range and /v1/status against the bucket itself; then SIGTERM exits 0
// quickly and the offline commands agree with the bucket.
func TestReadAPIMatchesBucket(t *testing.T) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "cfg")
	ctx := context.Background()
	for i := range 300 {
		for _, p := range []string{"route.", "cert.", "other."} {
			if _, err := b.Put(ctx, fmt.Sprintf("%sk%03d", p, i), []byte(fmt.Sprintf("%s value %d", p, i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 300; i += 7 {
		if _, err := b.Delete(ctx, fmt.Sprintf("route.k%03d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Purge(ctx, fmt.Sprintf("cert.k%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "cfg", "--prefix", "route.", "--prefix", "cert.", "--data-dir", dir, "--backend", "pebble")
	st := a.WaitCaughtUp(t, b, 30*time.Second)
	want := append(proctest.BucketState(t, b, "cert."), proctest.BucketState(t, b, "route.")...)
	if st.Keys != uint64(len(want)) || st.Stale || st.LastError != "" {
		t.Fatalf("status %+v, want %d keys", st, len(want))
	}
	c := a.Client(t)
	for _, w := range want {
		e, err := c.Get(ctx, w.Key)
		if err != nil || e.Revision != w.Revision || !bytes.Equal(e.Value, w.Value) {
			t.Fatalf("GET %s = %+v %v, want rev %d", w.Key, e, err, w.Revision)
		}
	}
	for _, k := range []string{"route.k000", "cert.k007", "route.nope"} {
		if _, err := c.Get(ctx, k); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("GET %s: %v, want not found", k, err)
		}
	}
	var apiErr *client.APIError
	if _, err := c.Get(ctx, "other.k001"); !errors.As(err, &apiErr) || apiErr.Code != "out_of_scope" {
		t.Fatalf("GET out of scope: %v", err)
	}
	var got []proctest.Entry
	for e, err := range c.Range(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, proctest.Entry{Key: e.Key, Value: e.Value, Revision: e.Revision})
	}
	if err := proctest.Diff(want, got); err != nil {
		t.Fatalf("range vs bucket: %v", err)
	}
	resp, err := http.Get(a.BaseURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"slipstream_applied_cursor " + strconv.FormatUint(st.Cursor, 10), "slipstream_keys " + strconv.Itoa(len(want)), `slipstream_read_requests_total{code="200",route="/v1/keys/{key}"}`} {
		if !bytes.Contains(body, []byte(m)) {
			t.Errorf("metrics lack %q", m)
		}
	}

	if took := a.Terminate(t); took > 10*time.Second {
		t.Fatalf("SIGTERM: exit after %s, want within 10s", took)
	}
	if err := proctest.Diff(want, harness.DumpFold(t, dir)); err != nil {
		t.Fatalf("dump vs bucket: %v", err)
	}
	if code, out, errOut := harness.RunAgent(t, nil, "inspect", "--data-dir", dir); code != 0 || !bytes.Contains([]byte(out), []byte(fmt.Sprintf(`"backend":"pebble","cursor":%d,"keys":%d`, st.Cursor, len(want)))) {
		t.Fatalf("inspect: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := harness.RunAgent(t, nil, "verify", "--data-dir", dir); code != 0 {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
}
