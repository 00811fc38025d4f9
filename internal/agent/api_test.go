package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

type testAPI struct {
	srv   *httptest.Server
	store *mapStore
	tr    *tracker
	ring  *ring
	obs   *observer
	m     *metrics
}

func newTestAPI(t *testing.T, mod func(*apiConfig)) *testAPI {
	t.Helper()
	ta := &testAPI{store: newMapStore(), m: newMetrics()}
	cfg := Config{Bucket: "b", Backend: "memory"}
	ta.tr = newTracker(cfg, time.Now, func(_, p Phase) { ta.m.setPhase(p) })
	ta.ring = newRing(1024, 1<<20, 0)
	ta.obs = &observer{tracker: ta.tr, ring: ta.ring, metrics: ta.m, log: slog.New(slog.DiscardHandler)}
	ac := apiConfig{Store: func() fold.Store { return ta.store }, Tracker: ta.tr, Ring: ta.ring, Metrics: ta.m, MaxWatchers: 4}
	if mod != nil {
		mod(&ac)
	}
	ta.srv = httptest.NewServer(newAPI(ac))
	t.Cleanup(ta.srv.Close)
	ta.tr.storeOpened(fold.State{})
	return ta
}

// apply folds updates into the store and tells the observer, as the loop does.
func (ta *testAPI) apply(t *testing.T, cursor uint64, us ...kv.Update) {
	t.Helper()
	if err := ta.applyErr(cursor, us...); err != nil {
		t.Fatal(err)
	}
}

// applyErr is apply for goroutines other than the test's.
func (ta *testAPI) applyErr(cursor uint64, us ...kv.Update) error {
	var muts []fold.Mutation
	for _, u := range us {
		switch u.Op {
		case kv.OpPut:
			muts = append(muts, fold.Mutation{Op: fold.MutPut, Key: u.Key, Value: u.Value, Revision: u.Revision})
		default:
			muts = append(muts, fold.Mutation{Op: fold.MutDelete, Key: u.Key, Revision: u.Revision})
		}
	}
	if err := ta.store.Apply(muts, fold.State{Cursor: cursor}); err != nil {
		return err
	}
	ta.obs.Applied(fold.Progress{State: fold.State{Cursor: cursor}, Synced: true}, us)
	return nil
}

func put(k, v string, rev uint64) kv.Update {
	return kv.Update{Op: kv.OpPut, Key: k, Value: []byte(v), Revision: rev}
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAPIGetKey(t *testing.T) {
	ta := newTestAPI(t, func(c *apiConfig) { c.Scope = []string{"route.", "cert."} })
	ta.apply(t, 3, put("route.a", "A", 1), put("cert.x", "X", 2), kv.Update{Op: kv.OpDelete, Key: "route.gone", Revision: 3})

	resp, body := get(t, ta.srv.URL+"/v1/keys/route.a")
	if resp.StatusCode != 200 || body != "A" || resp.Header.Get(HeaderRevision) != "1" || resp.Header.Get(HeaderStale) != "" {
		t.Fatalf("get route.a: %d %q rev=%q stale=%q", resp.StatusCode, body, resp.Header.Get(HeaderRevision), resp.Header.Get(HeaderStale))
	}
	cases := []struct {
		path string
		code int
		want string
	}{
		{"/v1/keys/route.missing", 404, `"not_found"`},
		{"/v1/keys/route.gone", 404, `"not_found"`},
		{"/v1/keys/other.k", 404, `"out_of_scope"`},
		{"/v1/keys/route.a%20b", 400, `"bad_key"`},
		{"/v1/keys/route.a.", 400, `"bad_key"`},
		{"/v1/keys/route.a?x=1", 400, `unknown query parameter \"x\"`},
		{"/v1/keys/" + strings.Repeat("a", maxKeyLen+1), 400, "longer than"},
		{"/v1/nope", 404, "no such endpoint"},
	}
	for _, c := range cases {
		resp, body := get(t, ta.srv.URL+c.path)
		if resp.StatusCode != c.code || !strings.Contains(body, c.want) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s = %d %s, want %d containing %s", c.path[:min(len(c.path), 40)], resp.StatusCode, body, c.code, c.want)
		}
	}
	resp, err := http.Post(ta.srv.URL+"/v1/keys/route.a", "text/plain", strings.NewReader("x"))
	if err != nil || resp.StatusCode != 405 {
		t.Fatalf("POST: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()

	ta.tr.setCause(causeConnect, errors.New("nats unreachable"))
	resp, body = get(t, ta.srv.URL+"/v1/keys/route.a")
	if resp.StatusCode != 200 || body != "A" || resp.Header.Get(HeaderStale) != "true" {
		t.Fatalf("degraded get: %d %q stale=%q", resp.StatusCode, body, resp.Header.Get(HeaderStale))
	}
}

func TestAPIRangeOrderedNDJSON(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.apply(t, 5, put("b.2", "2", 1), put("a.1", "1", 2), put("b.1", "1", 3), put("c", "c", 4), kv.Update{Op: kv.OpDelete, Key: "b.3", Revision: 5})
	resp, body := get(t, ta.srv.URL+"/v1/keys?prefix=b.")
	if resp.StatusCode != 200 || resp.Header.Get(HeaderCursor) != "5" {
		t.Fatalf("range: %d cursor=%q", resp.StatusCode, resp.Header.Get(HeaderCursor))
	}
	want := `{"key":"b.1","value":"MQ==","revision":3}` + "\n" + `{"key":"b.2","value":"Mg==","revision":1}` + "\n"
	if body != want {
		t.Fatalf("range body:\n%s\nwant:\n%s", body, want)
	}
	_, body = get(t, ta.srv.URL+"/v1/keys?limit=2")
	if n := strings.Count(body, "\n"); n != 2 || !strings.HasPrefix(body, `{"key":"a.1"`) {
		t.Fatalf("limit 2: %q", body)
	}
	for _, q := range []string{"?prefix=a%20", "?limit=-1", "?limit=x", "?prefix=a&prefix=b", "?bogus=1"} {
		resp, body := get(t, ta.srv.URL+"/v1/keys"+q)
		if resp.StatusCode != 400 || !strings.Contains(body, `"error"`) {
			t.Errorf("range %s = %d %s, want 400", q, resp.StatusCode, body)
		}
	}
}

func TestAPIAuthRateAndHealth(t *testing.T) {
	ta := newTestAPI(t, func(c *apiConfig) { c.Token = "s3cret"; c.RateLimit = 5 })
	if resp, _ := get(t, ta.srv.URL+"/healthz"); resp.StatusCode != 200 {
		t.Fatalf("healthz without token: %d", resp.StatusCode)
	}
	if resp, body := get(t, ta.srv.URL+"/readyz"); resp.StatusCode != 503 || !strings.Contains(body, "CatchingUp") {
		t.Fatalf("readyz while CatchingUp: %d %s", resp.StatusCode, body)
	}
	resp, body := get(t, ta.srv.URL+"/v1/status")
	if resp.StatusCode != 401 || !strings.Contains(body, "unauthorized") || strings.Contains(body, "s3cret") {
		t.Fatalf("status without token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, ta.srv.URL+"/v1/status", "Authorization", "Bearer wrong"); resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	ta.apply(t, 1, put("k", "v", 1))
	if resp, _ := get(t, ta.srv.URL+"/readyz"); resp.StatusCode != 200 {
		t.Fatalf("readyz when Live: %d", resp.StatusCode)
	}
	limited := false
	for i := 0; i < 50 && !limited; i++ {
		resp, body := get(t, ta.srv.URL+"/v1/status", "Authorization", "Bearer s3cret")
		switch resp.StatusCode {
		case 200:
			var st Status
			if err := json.Unmarshal([]byte(body), &st); err != nil || st.Phase != PhaseLive || st.Cursor != 1 {
				t.Fatalf("status: %s (%v)", body, err)
			}
		case 429:
			limited = true
		default:
			t.Fatalf("status: %d %s", resp.StatusCode, body)
		}
	}
	if !limited {
		t.Fatal("50 requests at rate limit 5/s were never limited")
	}
	_, body = get(t, ta.srv.URL+"/metrics", "Authorization", "Bearer s3cret")
	for _, name := range []string{"slipstream_applied_cursor 1", `slipstream_updates_applied_total{op="put"} 1`, `slipstream_phase{phase="Live"} 1`, "slipstream_read_requests_total", "slipstream_batch_apply_duration_seconds"} {
		if !strings.Contains(body, name) {
			t.Errorf("metrics lack %q", name)
		}
	}
}

// watchStream opens /v1/watch and returns a line reader.
func watchStream(t *testing.T, url string) (*http.Response, *bufio.Scanner) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return resp, sc
}

func nextLine(t *testing.T, sc *bufio.Scanner) map[string]any {
	t.Helper()
	if !sc.Scan() {
		t.Fatalf("stream ended: %v", sc.Err())
	}
	var m map[string]any
	if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
		t.Fatalf("line %q: %v", sc.Text(), err)
	}
	return m
}

func TestAPIWatchAfterApplyInOrderWithPrefix(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.apply(t, 2, put("a.1", "x", 1), put("b.1", "y", 2))
	resp, sc := watchStream(t, ta.srv.URL+"/v1/watch?after=0&prefix=a.")
	if resp.StatusCode != 200 {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	if m := nextLine(t, sc); m["key"] != "a.1" || m["revision"] != 1.0 || m["op"] != "put" || m["value"] != "eA==" {
		t.Fatalf("first line: %v", m)
	}
	go func() {
		_ = ta.applyErr(5, put("b.2", "z", 3), kv.Update{Op: kv.OpDelete, Key: "a.1", Revision: 4}, put("a.2", "w", 5))
	}()
	if m := nextLine(t, sc); m["key"] != "a.1" || m["op"] != "delete" || m["revision"] != 4.0 {
		t.Fatalf("second line: %v", m)
	}
	if m := nextLine(t, sc); m["key"] != "a.2" || m["revision"] != 5.0 {
		t.Fatalf("third line: %v", m)
	}
	// An update filtered by the prefix still moves the client's cursor via progress.
	go func() { _ = ta.applyErr(6, put("b.3", "q", 6)) }()
	if m := nextLine(t, sc); m["op"] != "progress" || m["revision"] != 6.0 {
		t.Fatalf("progress line: %v", m)
	}
	// Shutdown ends the stream with a resumable final line.
	ta.ring.close()
	if m := nextLine(t, sc); m["code"] != "shutdown" || m["resumeAfter"] != 6.0 {
		t.Fatalf("final line: %v", m)
	}
}

func TestAPIWatchCursorTooOldAndSlowConsumer(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.ring = newRing(4, 1<<20, 0)
	ta.srv.Config.Handler = newAPI(apiConfig{Store: func() fold.Store { return ta.store }, Tracker: ta.tr, Ring: ta.ring, Metrics: ta.m, MaxWatchers: 1})
	ta.obs.ring = ta.ring
	ta.apply(t, 6, put("k1", "v", 1), put("k2", "v", 2), put("k3", "v", 3), put("k4", "v", 4), put("k5", "v", 5), put("k6", "v", 6))
	resp, body := get(t, ta.srv.URL+"/v1/watch?after=1")
	if resp.StatusCode != 410 || !strings.Contains(body, `"cursor_too_old"`) || !strings.Contains(body, `"oldest":2`) {
		t.Fatalf("old cursor: %d %s", resp.StatusCode, body)
	}
	resp, sc := watchStream(t, ta.srv.URL+"/v1/watch")
	if resp.StatusCode != 200 || resp.Header.Get(HeaderCursor) != "6" {
		t.Fatalf("watch from now: %d cursor %q", resp.StatusCode, resp.Header.Get(HeaderCursor))
	}
	// Only one watcher allowed.
	if resp, body := get(t, ta.srv.URL+"/v1/watch"); resp.StatusCode != 503 || !strings.Contains(body, "too_many_watchers") {
		t.Fatalf("second watcher: %d %s", resp.StatusCode, body)
	}
	// One batch larger than the ring overtakes the reader: it is cut off, not waited for.
	ta.apply(t, 12, put("k7", "v", 7), put("k8", "v", 8), put("k9", "v", 9), put("k10", "v", 10), put("k11", "v", 11), put("k12", "v", 12))
	if m := nextLine(t, sc); m["code"] != "slow_consumer" {
		t.Fatalf("final line: %v", m)
	}
	for _, q := range []string{"?after=x", "?after=-1", "?prefix=%20"} {
		if resp, _ := get(t, ta.srv.URL+"/v1/watch"+q); resp.StatusCode != 400 {
			t.Errorf("watch %s = %d, want 400", q, resp.StatusCode)
		}
	}
}
