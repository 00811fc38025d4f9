package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/slipstream-dev/slipstream/pkg/export"
	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// API limits.
const (
	maxKeyLen        = 4096
	maxURLLen        = 8192
	maxHeaderBytes   = 16 << 10
	writeTimeout     = 10 * time.Second // per write of a response (extended while streaming)
	watchBatchLines  = 512
	progressInterval = time.Second
)

// Response headers.
const (
	HeaderRevision = "X-Slipstream-Revision"
	HeaderStale    = "X-Slipstream-Stale"
	HeaderCursor   = "X-Slipstream-Cursor"
)

// apiError is the JSON body of every error response and the final line of a cut stream.
type apiError struct {
	Error string `json:"error"`
	// Code is a stable machine-readable reason (bad_request, not_found, unauthorized,
	// rate_limited, cursor_too_old, slow_consumer, resynced, shutdown, not_ready, internal).
	Code string `json:"code"`
	// ResumeAfter, on watch errors, is the cursor a client can resume after (when it can).
	ResumeAfter *uint64 `json:"resumeAfter,omitempty"`
	// Oldest, on cursor_too_old, is the oldest cursor this agent can resume from.
	Oldest *uint64 `json:"oldest,omitempty"`
}

// api serves the local read API over the fold.
type api struct {
	store    func() fold.Store // current store; nil while not open
	tracker  *tracker
	ring     *ring
	metrics  *metrics
	scope    []string
	token    string
	limiter  *rate.Limiter // nil: unlimited
	watchers chan struct{} // semaphore of open watch streams
	mux      *http.ServeMux
	export   func(ctx context.Context) error // nil: exports not configured
}

type apiConfig struct {
	Store       func() fold.Store
	Tracker     *tracker
	Ring        *ring
	Metrics     *metrics
	Scope       []string
	Token       string
	RateLimit   float64
	MaxWatchers int
	// Export starts an export now (nil: exports not configured).
	Export func(ctx context.Context) error
}

func newAPI(c apiConfig) *api {
	a := &api{store: c.Store, tracker: c.Tracker, ring: c.Ring, metrics: c.Metrics, scope: c.Scope, token: c.Token,
		watchers: make(chan struct{}, max(1, c.MaxWatchers)), mux: http.NewServeMux(), export: c.Export}
	if c.RateLimit > 0 {
		a.limiter = rate.NewLimiter(rate.Limit(c.RateLimit), max(1, int(c.RateLimit/10)))
	}
	// Health is open and unlimited (probes); metrics need the token but are not rate
	// limited (scrapes must not fail under load); the /v1 API needs both.
	a.route("/healthz", open, a.healthz)
	a.route("/readyz", open, a.readyz)
	a.route("/metrics", authed, promhttp.HandlerFor(c.Metrics.reg, promhttp.HandlerOpts{}).ServeHTTP)
	a.route("/v1/status", authed|limited, a.status)
	a.route("/v1/keys", authed|limited, a.rangeKeys)
	a.route("/v1/keys/{key...}", authed|limited, a.getKey)
	a.route("/v1/watch", authed|limited, a.watch)
	a.route("/v1/export", authed|limited|post, a.exportNow)
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no such endpoint %q (see /v1/status, /v1/keys, /v1/keys/{key}, /v1/watch, POST /v1/export, /healthz, /readyz, /metrics)", r.URL.Path))
	})
	return a
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// guard selects the checks of a route.
type guard uint8

const (
	open    guard = 0
	authed  guard = 1 << iota // bearer token required (when configured)
	limited                   // counts against --rate-limit
	post                      // POST only (an action), not GET
)

// route registers h under pattern with method, size, auth and rate checks and metrics.
func (a *api) route(pattern string, g guard, h http.HandlerFunc) {
	name := strings.TrimSuffix(pattern, "/{key...}")
	if name != pattern {
		name += "/{key}"
	}
	rm := newRouteMetrics(a.metrics, name)
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, start: start, m: rm}
		defer rw.done()
		if !a.admit(rw, r, g) {
			return
		}
		h(rw, r)
	})
}

// admit runs the checks every request passes; it writes the error and returns false.
func (a *api) admit(w http.ResponseWriter, r *http.Request, g guard) bool {
	if g&post != 0 {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("method %s not allowed: %s takes POST", r.Method, r.URL.Path))
			return false
		}
	} else if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("method %s not allowed: the API is read-only (GET)", r.Method))
		return false
	}
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		writeError(w, http.StatusRequestEntityTooLarge, "body_not_allowed", "request body not allowed")
		return false
	}
	if len(r.RequestURI) > maxURLLen {
		writeError(w, http.StatusRequestURITooLong, "uri_too_long", fmt.Sprintf("request URI longer than %d bytes", maxURLLen))
		return false
	}
	if g&authed != 0 && a.token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slipstream"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <token from --token-file>)")
			return false
		}
	}
	if g&limited != 0 && a.limiter != nil && !a.limiter.Allow() {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "rate_limited", "rate limit exceeded (--rate-limit); retry later")
		return false
	}
	return true
}

func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	p := a.tracker.phase()
	if p != PhaseLive {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "phase": string(p)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "phase": string(p)})
}

// exportNow is POST /v1/export: 202 when an export started, 409 when this agent cannot
// start one now (another runs, another agent holds the lease, the fold is not Live), 404
// when exports are not configured, 503 when the lease cannot be read.
func (a *api) exportNow(w http.ResponseWriter, r *http.Request) {
	if err := onlyParams(r); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if a.export == nil {
		writeError(w, http.StatusNotFound, "exports_not_configured", errExportDisabled.Error())
		return
	}
	err := a.export(r.Context())
	switch {
	case err == nil:
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "started", "message": "export started; see lastExport in /v1/status"})
	case errors.Is(err, errExportBusy):
		writeError(w, http.StatusConflict, "export_running", err.Error())
	case errors.Is(err, export.ErrLeaseHeld):
		writeError(w, http.StatusConflict, "not_lease_holder", "another agent holds the export lease: "+err.Error())
	case errors.Is(err, errNotLive):
		writeError(w, http.StatusConflict, "not_live", err.Error())
	case errors.Is(err, errExportNotReady):
		writeError(w, http.StatusServiceUnavailable, "not_ready", err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, "lease_unavailable", "export lease unavailable: "+err.Error())
	}
}

func (a *api) status(w http.ResponseWriter, r *http.Request) {
	if err := onlyParams(r); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, a.tracker.snapshot())
}

// routeMetrics are one route's request metrics, resolved once (no label lookups per request
// for the common codes).
type routeMetrics struct {
	duration prometheus.Observer
	byCode   map[int]prometheus.Counter
	requests *prometheus.CounterVec
	route    string
}

func newRouteMetrics(m *metrics, route string) *routeMetrics {
	rm := &routeMetrics{duration: m.reqDuration.WithLabelValues(route), byCode: map[int]prometheus.Counter{}, requests: m.requests, route: route}
	for _, c := range []int{200, 202, 400, 401, 404, 405, 409, 410, 413, 414, 429, 500, 503} {
		rm.byCode[c] = m.requests.WithLabelValues(route, strconv.Itoa(c))
	}
	return rm
}

func (rm *routeMetrics) count(code int) {
	if c, ok := rm.byCode[code]; ok {
		c.Inc()
		return
	}
	rm.requests.WithLabelValues(rm.route, strconv.Itoa(code)).Inc()
}

// statusWriter records the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code  int
	start time.Time
	m     *routeMetrics
	timed bool
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
		s.observe()
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) observe() {
	if !s.timed {
		s.timed = true
		s.m.duration.Observe(time.Since(s.start).Seconds())
	}
}

func (s *statusWriter) done() {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	s.observe()
	s.m.count(s.code)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, apiError{Error: msg, Code: reason})
}

// onlyParams rejects query parameters other than allowed, and repeated ones.
func onlyParams(r *http.Request, allowed ...string) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	for k, vs := range r.URL.Query() {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
			}
		}
		if !ok {
			if len(allowed) == 0 {
				return fmt.Errorf("unknown query parameter %q (this endpoint takes none)", k)
			}
			return fmt.Errorf("unknown query parameter %q (allowed: %s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return fmt.Errorf("query parameter %q given %d times", k, len(vs))
		}
	}
	return nil
}
