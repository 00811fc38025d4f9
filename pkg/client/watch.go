package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Op is the operation of a watch event.
type Op string

// Operations.
const (
	OpPut    Op = "put"
	OpDelete Op = "delete"
	OpPurge  Op = "purge"
)

// Event is one applied update.
type Event struct {
	Op       Op
	Key      string
	Value    []byte // only for OpPut
	Revision uint64
}

type watchLine struct {
	Op       string  `json:"op"`
	Key      string  `json:"key"`
	Value    []byte  `json:"value"`
	Revision uint64  `json:"revision"`
	Error    string  `json:"error"`
	Code     string  `json:"code"`
	Resume   *uint64 `json:"resumeAfter"`
}

// Watch yields every update applied after cursor to keys under prefix, in revision order,
// until ctx ends (then the iteration simply stops) or an error that resuming cannot fix:
// an error matching ErrResyncRequired (List again), ErrUnauthorized, or another API error.
// Dropped connections and agent restarts are resumed from the last revision seen.
func (c *Client) Watch(ctx context.Context, prefix string, after uint64) iter.Seq2[Event, error] {
	return c.watch(ctx, prefix, &after)
}

// WatchFromNow is Watch starting at the agent's current cursor.
func (c *Client) WatchFromNow(ctx context.Context, prefix string) iter.Seq2[Event, error] {
	return c.watch(ctx, prefix, nil)
}

func (c *Client) watch(ctx context.Context, prefix string, after *uint64) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		delay := c.retryMin
		for ctx.Err() == nil {
			q := url.Values{}
			if prefix != "" {
				q.Set("prefix", prefix)
			}
			if after != nil {
				q.Set("after", strconv.FormatUint(*after, 10))
			}
			resp, err := c.do(ctx, "/v1/watch", q)
			var apiErr *APIError
			switch {
			case ctx.Err() != nil:
				return
			case errors.As(err, &apiErr) && apiErr.StatusCode != http.StatusServiceUnavailable && apiErr.StatusCode != http.StatusTooManyRequests:
				yield(Event{}, err)
				return
			case err != nil:
				// Agent down or restarting, or busy: retry with backoff.
				if !sleepJitter(ctx, &delay, c.retryMax) {
					return
				}
				continue
			}
			if after == nil {
				cur, perr := strconv.ParseUint(resp.Header.Get(headerCursor), 10, 64)
				if perr != nil {
					resp.Body.Close()
					yield(Event{}, fmt.Errorf("agent sent bad %s %q", headerCursor, resp.Header.Get(headerCursor)))
					return
				}
				after = &cur
			}
			delay = c.retryMin
			stop, err := c.readWatch(resp, after, yield)
			resp.Body.Close()
			if stop {
				return
			}
			if err != nil {
				yield(Event{}, err)
				return
			}
			if !sleepJitter(ctx, &delay, c.retryMax) {
				return
			}
		}
	}
}

// readWatch reads one stream. It returns stop when the consumer stopped, or an error that
// ends the watch; (false, nil) means reconnect.
func (c *Client) readWatch(resp *http.Response, after *uint64, yield func(Event, error) bool) (stop bool, err error) {
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		var l watchLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return false, fmt.Errorf("decode watch line: %w", err)
		}
		if l.Error != "" {
			if l.Code == "shutdown" {
				if l.Resume != nil && *l.Resume > *after {
					*after = *l.Resume
				}
				return false, nil
			}
			return false, &APIError{StatusCode: http.StatusOK, Code: l.Code, Message: l.Error}
		}
		if l.Revision <= *after {
			continue // already delivered (cannot happen with a correct agent; be safe)
		}
		*after = l.Revision
		if l.Op == "progress" {
			continue
		}
		if !yield(Event{Op: Op(l.Op), Key: l.Key, Value: l.Value, Revision: l.Revision}, nil) {
			return true, nil
		}
	}
	return false, nil // connection ended: resume
}

func sleepJitter(ctx context.Context, d *time.Duration, maxDelay time.Duration) bool {
	wait := *d/2 + rand.N(*d/2+1)
	*d = min(*d*2, maxDelay)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
