package export

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestLease(t *testing.T) {
	f := newNATSFixture(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Now()}
	mk := func(holder string) *Lease {
		l, err := NewLease(LeaseConfig{Bucket: f.bucket, Key: LeaseKey("orders"), Holder: holder, TTL: 10 * time.Second, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := mk("node-a"), mk("node-b")

	if err := a.Acquire(ctx); err != nil {
		t.Fatalf("a acquire: %v", err)
	}
	if err := b.Acquire(ctx); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("b acquire while a holds: %v, want ErrLeaseHeld", err)
	}
	clock.Add(8 * time.Second)
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("a renew: %v", err)
	}
	clock.Add(8 * time.Second) // 16s after acquire, 8s after renew: still a's
	if err := b.Acquire(ctx); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("b acquire after a renewed: %v, want ErrLeaseHeld", err)
	}
	clock.Add(3 * time.Second) // a's renewal expired
	if a.Held() {
		t.Fatal("a thinks it holds an expired lease")
	}
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("b takes over the expired lease: %v", err)
	}
	// a's clock lags: it still believes it holds the lease. Its CAS writes fail anyway.
	a.mu.Lock()
	a.expires = clock.Now().Add(time.Hour)
	a.mu.Unlock()
	if err := a.Release(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("a's stale release: %v, want ErrLeaseLost", err)
	}
	a.mu.Lock()
	a.rev, a.expires = 1, clock.Now().Add(time.Hour) // any revision but b's
	a.mu.Unlock()
	if err := a.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("a renew after takeover: %v, want ErrLeaseLost", err)
	}
	if !b.Held() {
		t.Fatal("b lost the lease to a's stale release")
	}
	if err := b.Release(ctx); err != nil {
		t.Fatalf("b release: %v", err)
	}
	if err := a.Acquire(ctx); err != nil {
		t.Fatalf("a acquire after release: %v", err)
	}
}

func TestLeaseRace(t *testing.T) {
	f := newNATSFixture(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	wins := make(chan string, 8)
	for _, h := range []string{"n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"} {
		l, err := NewLease(LeaseConfig{Bucket: f.bucket, Key: LeaseKey("orders"), Holder: h})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.Acquire(ctx)
			switch {
			case err == nil:
				wins <- h
			case !errors.Is(err, ErrLeaseHeld):
				t.Errorf("%s: %v", h, err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	var got []string
	for h := range wins {
		got = append(got, h)
	}
	if len(got) != 1 {
		t.Fatalf("winners %v, want exactly one", got)
	}
}
