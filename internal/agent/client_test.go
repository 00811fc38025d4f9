package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/client"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// The pkg/client tests run here, against the agent's real read API handler over a fake
// store (the process-level tests run it against the agent binary).

func TestClientGetRangeStatus(t *testing.T) {
	ta := newTestAPI(t, func(c *apiConfig) { c.Token = "tok" })
	ta.apply(t, 4, put("route/a.x", "1", 1), put("route.b", "2", 2), put("cert.c", "3", 3), kv.Update{Op: kv.OpDelete, Key: "route.d", Revision: 4})
	ctx := context.Background()
	if _, err := client.New("localhost:1"); err == nil {
		t.Fatal("New accepted a URL without scheme")
	}
	noTok, _ := client.New(ta.srv.URL)
	if _, err := noTok.Status(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("no token: %v", err)
	}
	c, err := client.New(ta.srv.URL, client.WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Get(ctx, "route/a.x")
	if err != nil || string(e.Value) != "1" || e.Revision != 1 || e.Stale {
		t.Fatalf("get: %+v %v", e, err)
	}
	if _, err := c.Get(ctx, "route.d"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	var apiErr *client.APIError
	if _, err := c.Get(ctx, "bad key"); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "bad_key" {
		t.Fatalf("get bad key: %v", err)
	}
	l, err := c.List(ctx, "route")
	if err != nil || l.Cursor != 4 {
		t.Fatalf("list: %v cursor %v", err, l)
	}
	var got []string
	for e, err := range l.All() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%s@%d", e.Key, e.Value, e.Revision))
	}
	if fmt.Sprint(got) != "[route.b=2@2 route/a.x=1@1]" {
		t.Fatalf("list: %v", got)
	}
	n := 0
	for _, err := range c.Range(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("range all: %d entries", n)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Phase != "Live" || st.Cursor != 4 || st.Bucket != "b" {
		t.Fatalf("status: %+v %v", st, err)
	}
	ta.tr.setCause(causeHealth, errors.New("nats down"))
	if e, err := c.Get(ctx, "route.b"); err != nil || !e.Stale {
		t.Fatalf("stale get: %+v %v", e, err)
	}
}

// TestClientWatchResumesAcrossServerRestart cuts the agent's HTTP side (shutdown line,
// then connection refused) and checks the client resumes and delivers every update once,
// in order.
func TestClientWatchResumesAcrossServerRestart(t *testing.T) {
	ta := newTestAPI(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _ := client.New(ta.srv.URL, client.WithRetry(5*time.Millisecond, 50*time.Millisecond))
	events := make(chan client.Event, 100)
	errs := make(chan error, 1)
	go func() {
		for ev, err := range c.Watch(ctx, "k.", 0) {
			if err != nil {
				errs <- err
				return
			}
			events <- ev
		}
	}()
	recv := func(want uint64) {
		t.Helper()
		select {
		case ev := <-events:
			if ev.Revision != want || ev.Key != fmt.Sprintf("k.%d", want) {
				t.Fatalf("event %+v, want revision %d", ev, want)
			}
		case err := <-errs:
			t.Fatalf("watch error: %v", err)
		case <-ctx.Done():
			t.Fatalf("no event %d", want)
		}
	}
	ta.apply(t, 2, put("k.1", "a", 1), put("other", "x", 2))
	recv(1)
	// The agent shuts its HTTP side down (watch gets the shutdown line), applies more while
	// the client is away, and comes back on the same address.
	addr := ta.srv.Listener.Addr().String()
	ta.ring.close()
	ta.srv.Close()
	// A restarted agent starts its ring at the store cursor (2).
	ta.ring = newRing(1024, 1<<20, ta.store.State().Cursor)
	ta.obs.ring = ta.ring
	ta.apply(t, 4, put("k.3", "b", 3), put("k.4", "c", 4))
	srv2 := httptest.NewUnstartedServer(newAPI(apiConfig{Store: func() fold.Store { return ta.store }, Tracker: ta.tr, Ring: ta.ring, Metrics: ta.m, MaxWatchers: 4}))
	ln, err := listenRetry(addr)
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	srv2.Listener = ln
	srv2.Start()
	defer srv2.Close()
	defer cancel() // end the watch before srv2.Close waits for its connection
	// Cursor 2 was the shutdown resume point; a fresh ring at cursor 2 holds 3 and 4.
	recv(3)
	recv(4)
	ta.apply(t, 5, put("k.5", "d", 5))
	recv(5)
	// A client whose cursor the agent no longer holds is told to resync.
	for _, err := range c.Watch(ctx, "", 1) {
		if !errors.Is(err, client.ErrResyncRequired) {
			t.Fatalf("watch after 1 on a ring starting at 2: %v", err)
		}
		break
	}
}

// listenRetry binds addr again, retrying while the old socket is released.
func listenRetry(addr string) (net.Listener, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(20 * time.Millisecond) // back-off between bind attempts, not synchronisation
	}
}
