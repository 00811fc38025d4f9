package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/agent"
	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/client"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// startAgent runs a real agent in-process (embedded nats-server, memory fold) and returns
// a client of it and the bucket it folds.
func startAgent(t *testing.T, extra ...string) (*client.Client, *kv.Bucket) {
	t.Helper()
	ns := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := kv.Connect(ctx, kv.Options{URLs: []string{ns.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	b, err := conn.CreateBucket(ctx, kv.BucketConfig{Name: "apps"})
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--nats-url", ns.URL(), "--bucket", "apps", "--data-dir", t.TempDir(), "--backend", "memory", "--listen", "127.0.0.1:0"}, extra...)
	cfg, err := agent.ParseRun(args, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})
	c, err := client.New("http://"+a.Addr(), client.WithRetry(5*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}

func waitLive(t *testing.T, c *client.Client, cursor uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := c.Status(context.Background())
		if err == nil && st.Phase == "Live" && st.Cursor >= cursor {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not Live at %d: %+v %v", cursor, st, err)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

func TestClientAgainstRealAgent(t *testing.T) {
	c, b := startAgent(t)
	ctx := context.Background()
	var last uint64
	for i := range 5 {
		rev, err := b.Put(ctx, fmt.Sprintf("svc.%d", i), []byte(fmt.Sprint("v", i)))
		if err != nil {
			t.Fatal(err)
		}
		last = rev
	}
	if _, err := b.Delete(ctx, "svc.4"); err != nil {
		t.Fatal(err)
	}
	waitLive(t, c, last+1)

	e, err := c.Get(ctx, "svc.2")
	if err != nil || string(e.Value) != "v2" || e.Revision != 3 || e.Stale {
		t.Fatalf("Get: %+v %v", e, err)
	}
	if _, err := c.Get(ctx, "svc.4"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get deleted: %v", err)
	}
	l, err := c.List(ctx, "svc.")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for e, err := range l.All() {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, e.Key)
	}
	if fmt.Sprint(keys) != "[svc.0 svc.1 svc.2 svc.3]" || l.Cursor != last+1 {
		t.Fatalf("List: %v at %d", keys, l.Cursor)
	}

	// Watch from the listing's cursor sees exactly the updates after it, in order.
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	go func() {
		for i := range 3 {
			if _, err := b.Put(ctx, fmt.Sprintf("svc.new%d", i), []byte("x")); err != nil {
				return
			}
		}
	}()
	var got []client.Event
	for ev, err := range c.Watch(wctx, "svc.", l.Cursor) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
		if len(got) == 3 {
			break
		}
	}
	for i, ev := range got {
		if ev.Op != client.OpPut || ev.Key != fmt.Sprintf("svc.new%d", i) || ev.Revision != l.Cursor+uint64(i)+1 {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
}

func TestClientToken(t *testing.T) {
	tok := t.TempDir() + "/token"
	if err := writeFile(tok, "s3cret\n"); err != nil {
		t.Fatal(err)
	}
	c, _ := startAgent(t, "--token-file", tok)
	if _, err := c.Status(context.Background()); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("without token: %v", err)
	}
	u := c.BaseURL()
	c2, err := client.New(u, client.WithTokenFile(tok))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Status(context.Background()); err != nil {
		t.Fatalf("with token: %v", err)
	}
}
