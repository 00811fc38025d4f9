package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
)

func TestStartRestartKeepsStreams(t *testing.T) {
	s := natstest.Start(t)
	url := s.URL()
	nc := s.Conn(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("put: %v", err)
	}

	s.Restart(t)
	if s.URL() != url {
		t.Fatalf("restart changed URL: %s -> %s", url, s.URL())
	}
	// The client reconnects by itself; poll until the value is readable again.
	deadline := time.Now().Add(15 * time.Second)
	for {
		e, err := kv.Get(ctx, "k")
		if err == nil {
			if string(e.Value()) != "v" {
				t.Fatalf("value after restart = %q", e.Value())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("value not readable after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShutdownIsIdempotent(t *testing.T) {
	s := natstest.Start(t)
	s.Shutdown()
	s.Shutdown()
	if s.NATS() != nil {
		t.Fatal("NATS() after Shutdown is not nil")
	}
}
