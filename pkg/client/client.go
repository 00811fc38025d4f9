package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Headers set by the agent.
const (
	headerRevision = "X-Slipstream-Revision"
	headerStale    = "X-Slipstream-Stale"
	headerCursor   = "X-Slipstream-Cursor"
)

// Sentinel errors. Match with errors.Is.
var (
	// ErrNotFound: the key is absent (or a tombstone, or outside the fold's scope).
	ErrNotFound = errors.New("slipstream: key not found")
	// ErrResyncRequired: the agent can no longer deliver every update after the cursor; List
	// again and Watch from the listing's cursor.
	ErrResyncRequired = errors.New("slipstream: watch cannot resume from this cursor; list again")
	// ErrUnauthorized: the token is missing or wrong.
	ErrUnauthorized = errors.New("slipstream: unauthorized")
)

// APIError is an error response of the agent.
type APIError struct {
	StatusCode int
	Code       string // the agent's machine-readable reason, e.g. not_found, bad_key
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("slipstream agent: %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// Is maps API errors onto the sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound && (e.Code == "not_found" || e.Code == "out_of_scope")
	case ErrResyncRequired:
		return e.Code == "cursor_too_old" || e.Code == "slow_consumer" || e.Code == "resynced"
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	}
	return false
}

// Entry is one key of the fold.
type Entry struct {
	Key      string `json:"key"`
	Value    []byte `json:"value"`
	Revision uint64 `json:"revision"`
	// Stale is true when the agent served it while Degraded (NATS unreachable...).
	Stale bool `json:"-"`
}

// Status is the agent's /v1/status.
type Status struct {
	Phase              string    `json:"phase"`
	Cursor             uint64    `json:"cursor"`
	Pending            uint64    `json:"pending"`
	LagSeconds         float64   `json:"lagSeconds"`
	Keys               uint64    `json:"keys"`
	CursorExpired      uint64    `json:"cursorExpired"`
	Resyncs            uint64    `json:"resyncs"`
	SeededFrom         string    `json:"seededFrom"`
	LastError          string    `json:"lastError"`
	Stale              bool      `json:"stale"`
	Synced             bool      `json:"synced"`
	StreamLastSequence uint64    `json:"streamLastSequence"`
	Bucket             string    `json:"bucket"`
	Prefixes           []string  `json:"prefixes"`
	Backend            string    `json:"backend"`
	PhaseSince         time.Time `json:"phaseSince"`
}

// Client talks to one agent. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	hc    *http.Client
	token string
	// retry bounds the delay between watch reconnects.
	retryMin, retryMax time.Duration
}

// Option configures New.
type Option func(*Client) error

// WithHTTPClient uses hc (default: a client without overall timeout, since watches and
// ranges stream; bound calls with their context).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) error { c.hc = hc; return nil } }

// WithToken sends "Authorization: Bearer token".
func WithToken(token string) Option { return func(c *Client) error { c.token = token; return nil } }

// WithTokenFile reads the bearer token from a file (as the agent's --token-file).
func WithTokenFile(path string) Option {
	return func(c *Client) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read token file: %w", err)
		}
		c.token = strings.TrimSpace(string(b))
		return nil
	}
}

// WithRetry sets the bounds of the jittered backoff between watch reconnects (default
// 50ms..2s).
func WithRetry(minDelay, maxDelay time.Duration) Option {
	return func(c *Client) error { c.retryMin, c.retryMax = minDelay, maxDelay; return nil }
}

// New returns a client of the agent at baseURL (e.g. "http://127.0.0.1:7070").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("slipstream client: base URL %q: want http://host:port", baseURL)
	}
	c := &Client{base: u, hc: &http.Client{}, retryMin: 50 * time.Millisecond, retryMax: 2 * time.Second}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// BaseURL returns the agent's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

func (c *Client) do(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	return resp, nil
}

func readAPIError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(b, &body) != nil || body.Error == "" {
		body.Error = strings.TrimSpace(string(b))
	}
	return &APIError{StatusCode: resp.StatusCode, Code: body.Code, Message: body.Error}
}

// Get returns the live value of key. It returns an error matching ErrNotFound when the key
// is absent.
func (c *Client) Get(ctx context.Context, key string) (Entry, error) {
	resp, err := c.do(ctx, "/v1/keys/"+escapeKey(key), nil)
	if err != nil {
		return Entry{}, err
	}
	defer resp.Body.Close()
	v, err := io.ReadAll(resp.Body)
	if err != nil {
		return Entry{}, fmt.Errorf("read value of %q: %w", key, err)
	}
	rev, err := strconv.ParseUint(resp.Header.Get(headerRevision), 10, 64)
	if err != nil {
		return Entry{}, fmt.Errorf("agent sent bad %s %q", headerRevision, resp.Header.Get(headerRevision))
	}
	return Entry{Key: key, Value: v, Revision: rev, Stale: resp.Header.Get(headerStale) == "true"}, nil
}

// escapeKey escapes a key for the URL path (keys may hold "/").
func escapeKey(k string) string {
	parts := strings.Split(k, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	resp, err := c.do(ctx, "/v1/status", nil)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return Status{}, fmt.Errorf("decode status: %w", err)
	}
	return s, nil
}

// Listing is a streamed, consistent snapshot of the keys under a prefix.
type Listing struct {
	// Cursor is the fold's cursor at the snapshot: Watch after it to follow from there.
	Cursor uint64
	// Stale is true when the agent served it while Degraded.
	Stale bool
	body  io.ReadCloser
}

// List starts streaming the live keys under prefix ("" for all), ordered by key. Iterate
// with All; Close (or iterating to the end) releases the connection.
func (c *Client) List(ctx context.Context, prefix string) (*Listing, error) {
	resp, err := c.do(ctx, "/v1/keys", url.Values{"prefix": {prefix}})
	if err != nil {
		return nil, err
	}
	cur, err := strconv.ParseUint(resp.Header.Get(headerCursor), 10, 64)
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("agent sent bad %s %q", headerCursor, resp.Header.Get(headerCursor))
	}
	return &Listing{Cursor: cur, Stale: resp.Header.Get(headerStale) == "true", body: resp.Body}, nil
}

// All yields the entries in key order; a failure ends it with one error.
func (l *Listing) All() iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		defer l.body.Close()
		sc := bufio.NewScanner(l.body)
		sc.Buffer(make([]byte, 64<<10), 256<<20)
		for sc.Scan() {
			var line struct {
				Entry
				Error string `json:"error"`
				Code  string `json:"code"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				yield(Entry{}, fmt.Errorf("decode listing line: %w", err))
				return
			}
			if line.Error != "" {
				yield(Entry{}, &APIError{StatusCode: http.StatusOK, Code: line.Code, Message: line.Error})
				return
			}
			line.Entry.Stale = l.Stale
			if !yield(line.Entry, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(Entry{}, fmt.Errorf("read listing: %w", err))
		}
	}
}

// Close releases the listing's connection.
func (l *Listing) Close() error { return l.body.Close() }

// Range yields the live keys under prefix in key order (List + All).
func (c *Client) Range(ctx context.Context, prefix string) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		l, err := c.List(ctx, prefix)
		if err != nil {
			yield(Entry{}, err)
			return
		}
		for e, err := range l.All() {
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
}
