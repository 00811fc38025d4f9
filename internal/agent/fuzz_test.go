package agent

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// FuzzFoldManifest: any bytes handed in as --fold-file give a Config or a ConfigError,
// never a panic.
func FuzzFoldManifest(f *testing.F) {
	f.Add([]byte(manifest))
	f.Add([]byte("apiVersion: slipstream.dev/v1alpha1\nkind: KVFold\nspec:\n  batch: {maxUpdates: -3, window: 1h}\n"))
	f.Add([]byte("apiVersion: slipstream.dev/v1alpha1\nkind: KVFold\nspec: [1, 2]\n"))
	f.Add([]byte("{{{{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseFoldManifest("f.yaml", b)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("non-ConfigError %T: %v", err, err)
			}
			return
		}
		r := rawRun{natsURL: "nats://h:1", bucket: "b", backend: "memory", dataDir: t.TempDir(), listen: DefaultListen,
			batchWindow: "10ms", batchMax: "1", rateLimit: "0", maxWatchers: "1", watchRing: "16", logLevel: "info", logFormat: "text"}
		_ = m.applyTo(&r, map[string]bool{})
		if _, err := r.validate(); err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("non-ConfigError %T: %v", err, err)
			}
		}
	})
}

// FuzzAPIRequest: any path and query get a response below 500, and every 4xx carries a
// JSON error naming the problem.
func FuzzAPIRequest(f *testing.F) {
	for _, s := range [][2]string{
		{"/v1/keys/route.a", ""}, {"/v1/keys", "prefix=route.&limit=1"}, {"/v1/watch", "after=x"},
		{"/v1/keys/../../etc", ""}, {"/v1/keys/a%00b", ""}, {"/v1/status", "a=1&a=2"}, {"/metrics", ""},
		{"/v1/keys", "prefix=%ff"}, {"/v1/watch", "after=18446744073709551615"},
	} {
		f.Add(s[0], s[1])
	}
	store := newMapStore()
	_ = store.Apply([]fold.Mutation{{Op: fold.MutPut, Key: "route.a", Value: []byte("v"), Revision: 1}}, fold.State{Cursor: 1})
	m := newMetrics()
	tr := newTracker(Config{}, time.Now, nil)
	tr.storeOpened(fold.State{Cursor: 1})
	rg := newRing(16, 1<<20, 1)
	rg.close() // watch streams end at once instead of following
	h := newAPI(apiConfig{Store: func() fold.Store { return store }, Tracker: tr, Ring: rg, Metrics: m, Scope: []string{"route."}, MaxWatchers: 2})
	f.Fuzz(func(t *testing.T, path, query string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n") {
			return
		}
		u := &url.URL{Path: path, RawQuery: query}
		req := httptest.NewRequest(http.MethodGet, "http://agent/", nil)
		req.URL, req.RequestURI = u, u.RequestURI()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		code := rec.Code
		if code >= 500 && code != http.StatusServiceUnavailable {
			t.Fatalf("%s?%s: %d %s", path, query, code, rec.Body.String())
		}
		if code >= 400 && code < 500 {
			var e apiError
			body, _ := io.ReadAll(rec.Body)
			if json.Unmarshal(body, &e) != nil || e.Error == "" || e.Code == "" {
				t.Fatalf("%s?%s: %d without a JSON error: %q", path, query, code, body)
			}
		}
	})
}
