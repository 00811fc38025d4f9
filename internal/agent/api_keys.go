package agent

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// KeyLine is one line of GET /v1/keys (Value is base64 in JSON).
type KeyLine struct {
	Key      string `json:"key"`
	Value    []byte `json:"value"`
	Revision uint64 `json:"revision"`
}

// validateKey checks a key from a request path.
func validateKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("empty key")
	case len(k) > maxKeyLen:
		return fmt.Errorf("key longer than %d bytes", maxKeyLen)
	case strings.HasPrefix(k, ".") || strings.HasSuffix(k, "."):
		return fmt.Errorf("invalid key %q: starts or ends with \".\"", k)
	}
	for _, r := range k {
		if !validKeyChar(r) {
			return fmt.Errorf("invalid key %q: character %q not allowed (letters, digits, - _ / = .)", k, r)
		}
	}
	return nil
}

// validatePrefix checks a range prefix ("" is every key).
func validatePrefix(p string) error {
	if len(p) > maxKeyLen {
		return fmt.Errorf("prefix longer than %d bytes", maxKeyLen)
	}
	for _, r := range p {
		if !validKeyChar(r) {
			return fmt.Errorf("invalid prefix %q: character %q not allowed (letters, digits, - _ / = .)", p, r)
		}
	}
	return nil
}

// inScope reports whether key is within the fold's scope.
func (a *api) inScope(key string) bool {
	if len(a.scope) == 0 {
		return true
	}
	for _, p := range a.scope {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// prefixMeetsScope reports whether some key under prefix p can be in scope.
func (a *api) prefixMeetsScope(p string) bool {
	if len(a.scope) == 0 {
		return true
	}
	for _, s := range a.scope {
		if strings.HasPrefix(p, s) || strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func (a *api) openStore(w http.ResponseWriter) fold.Store {
	s := a.store()
	if s == nil {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "the fold is not open yet (phase "+string(a.tracker.phase())+")")
	}
	return s
}

func (a *api) markStale(w http.ResponseWriter) {
	if a.tracker.stale() {
		w.Header().Set(HeaderStale, "true")
	}
}

func (a *api) getKey(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if err := validateKey(key); err != nil {
		writeError(w, http.StatusBadRequest, "bad_key", err.Error())
		return
	}
	if err := onlyParams(r); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if !a.inScope(key) {
		writeError(w, http.StatusNotFound, "out_of_scope", fmt.Sprintf("key %q is outside this fold's scope (prefixes %s)", key, strings.Join(a.scope, ", ")))
		return
	}
	s := a.openStore(w)
	if s == nil {
		return
	}
	e, ok, err := s.Get(key)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "read fold: "+err.Error())
		return
	}
	a.markStale(w)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("key %q not found", key))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(e.Value)))
	h.Set(HeaderRevision, strconv.FormatUint(e.Revision, 10))
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.Value)
	}
}

// rangeKeys streams every live key under ?prefix= as NDJSON, ordered by key, from one
// consistent snapshot whose cursor is in X-Slipstream-Cursor (watch after it to follow).
// ?limit=N stops after N lines. An error after the first line ends the stream with a
// final {"error":...} line.
func (a *api) rangeKeys(w http.ResponseWriter, r *http.Request) {
	if err := onlyParams(r, "prefix", "limit"); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	q := r.URL.Query()
	prefix := q.Get("prefix")
	if err := validatePrefix(prefix); err != nil {
		writeError(w, http.StatusBadRequest, "bad_prefix", err.Error())
		return
	}
	limit := -1
	if ls := q.Get("limit"); ls != "" {
		n, err := strconv.Atoi(ls)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("limit %q: want an integer >= 0", ls))
			return
		}
		limit = n
	}
	if !a.prefixMeetsScope(prefix) {
		writeError(w, http.StatusNotFound, "out_of_scope", fmt.Sprintf("prefix %q is outside this fold's scope (prefixes %s)", prefix, strings.Join(a.scope, ", ")))
		return
	}
	s := a.openStore(w)
	if s == nil {
		return
	}
	snap, err := s.Snapshot()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "snapshot fold: "+err.Error())
		return
	}
	defer snap.Close()
	a.markStale(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set(HeaderCursor, strconv.FormatUint(snap.State().Cursor, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	n := 0
	for e, err := range snap.Range(prefix, false) {
		if err != nil {
			_ = enc.Encode(apiError{Error: "read fold: " + err.Error(), Code: "internal"})
			break
		}
		if limit >= 0 && n >= limit {
			break
		}
		if bw.Buffered() == 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		}
		if enc.Encode(KeyLine{Key: e.Key, Value: e.Value, Revision: e.Revision}) != nil {
			return // client gone
		}
		n++
	}
	_ = bw.Flush()
}
