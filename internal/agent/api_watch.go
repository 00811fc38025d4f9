package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WatchLine is one line of GET /v1/watch. Op is put, delete, purge, or progress (no key:
// every update up to Revision has been delivered, the client may resume after it).
type WatchLine struct {
	Op       string `json:"op"`
	Key      string `json:"key,omitempty"`
	Value    []byte `json:"value,omitempty"`
	Revision uint64 `json:"revision"`
}

// watch streams applied updates after ?after=CURSOR (default: the current cursor) whose key
// starts with ?prefix=, as NDJSON, until the client goes away. Updates appear only after
// they are durable in the fold. The stream ends with a final {"error":...} line when the
// agent cuts it: slow_consumer (the client fell behind the in-memory ring), resynced (the
// fold was rebuilt), shutdown. A cursor older than the ring gets 410 cursor_too_old.
func (a *api) watch(w http.ResponseWriter, r *http.Request) {
	if err := onlyParams(r, "after", "prefix"); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	q := r.URL.Query()
	prefix := q.Get("prefix")
	if err := validatePrefix(prefix); err != nil {
		writeError(w, http.StatusBadRequest, "bad_prefix", err.Error())
		return
	}
	after := int64(-1)
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_cursor", fmt.Sprintf("after %q: want a cursor (stream sequence, integer >= 0)", s))
			return
		}
		after = int64(n)
	}
	if !a.prefixMeetsScope(prefix) {
		writeError(w, http.StatusNotFound, "out_of_scope", fmt.Sprintf("prefix %q is outside this fold's scope (prefixes %s)", prefix, strings.Join(a.scope, ", ")))
		return
	}
	// Until the store is open the ring is not positioned at the fold's cursor yet.
	if a.openStore(w) == nil {
		return
	}
	select {
	case a.watchers <- struct{}{}:
		defer func() { <-a.watchers }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "too_many_watchers", fmt.Sprintf("too many open watch streams (--max-watchers %d)", cap(a.watchers)))
		return
	}
	pos, err := a.ring.begin(after)
	if err != nil {
		if errors.Is(err, errCursorTooOld) {
			oldest := a.ring.oldest()
			writeJSON(w, http.StatusGone, apiError{Code: "cursor_too_old", Oldest: &oldest,
				Error: fmt.Sprintf("cursor %d is older than the updates this agent keeps (oldest resumable cursor %d): re-read with /v1/keys and watch after its %s", after, oldest, HeaderCursor)})
			return
		}
		writeError(w, http.StatusServiceUnavailable, "shutdown", err.Error())
		return
	}
	a.metrics.watchers.Inc()
	defer a.metrics.watchers.Dec()

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(HeaderCursor, strconv.FormatUint(pos.After, 10))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	if r.Method == http.MethodHead {
		return
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	sent := pos.After // the revision the client knows it has everything up to
	buf := make([]ringEntry, 0, watchBatchLines)
	for {
		es, cur, wake, err := a.ring.read(pos, buf[:0], watchBatchLines)
		if err != nil {
			a.endWatch(rc, bw, enc, err, pos.After)
			return
		}
		if len(es) > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			for _, e := range es {
				if !strings.HasPrefix(e.Key, prefix) {
					continue
				}
				if enc.Encode(WatchLine{Op: e.Op.String(), Key: e.Key, Value: e.Value, Revision: e.Rev}) != nil {
					return
				}
				sent = e.Rev
			}
			if bw.Flush() != nil || rc.Flush() != nil {
				return
			}
		}
		if len(es) == watchBatchLines {
			pos.After = es[len(es)-1].Rev
			continue // more to read now
		}
		pos.After = max(pos.After, cur)
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-tick.C:
			if pos.After > sent {
				_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
				if enc.Encode(WatchLine{Op: "progress", Revision: pos.After}) != nil || bw.Flush() != nil || rc.Flush() != nil {
					return
				}
				sent = pos.After
			}
		}
	}
}

// endWatch writes the final line of a stream the agent cuts.
func (a *api) endWatch(rc *http.ResponseController, bw *bufio.Writer, enc *json.Encoder, err error, after uint64) {
	e := apiError{Error: err.Error()}
	switch {
	case errors.Is(err, errCursorTooOld):
		e.Code = "slow_consumer"
		e.Error = fmt.Sprintf("watch cut off: the client fell behind the updates this agent keeps (after %d); re-read with /v1/keys and watch again", after)
	case errors.Is(err, errRingReset):
		e.Code = "resynced"
		e.Error = "watch cut off: the fold was resynced; re-read with /v1/keys and watch again"
	case errors.Is(err, errRingClosed):
		e.Code = "shutdown"
		e.Error = "agent shutting down; resume after the given cursor"
		e.ResumeAfter = &after
	default:
		e.Code = "internal"
	}
	a.metrics.watchCutoffs.WithLabelValues(e.Code).Inc()
	_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_ = enc.Encode(e)
	_ = bw.Flush()
	_ = rc.Flush()
}
