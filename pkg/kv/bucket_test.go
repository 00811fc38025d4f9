package kv_test

import (
	"errors"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

func TestBucketLifecycleAndStatus(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv)
	ctx := testCtx(t)
	if _, err := c.Bucket(ctx, "nope"); !errors.Is(err, kv.ErrBucketNotFound) {
		t.Fatalf("open missing bucket: %v", err)
	}
	cfg := kv.BucketConfig{
		Name: "cfg", Description: "d", MaxBytes: 1 << 20, MaxAge: time.Hour, History: 4,
		Replicas: 1, Storage: kv.StorageMemory, LimitMarkerTTL: 2 * time.Second,
	}
	b, err := c.CreateBucket(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(ctx, cfg); err != nil {
		t.Errorf("create identical bucket again: %v", err)
	}
	changed := cfg
	changed.History = 2
	if _, err := c.CreateBucket(ctx, changed); !errors.Is(err, kv.ErrBucketExists) {
		t.Errorf("create with different config: %v", err)
	}
	if _, err := b.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "a", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "b", []byte("1")); err != nil {
		t.Fatal(err)
	}
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.FirstSeq != 1 || st.LastSeq != 3 || st.Msgs != 3 || st.NumSubjects != 2 || !st.DiscardNew {
		t.Errorf("status state = %+v", st)
	}
	got := st.Config
	if got.MaxAge != time.Hour || got.History != 4 || got.MaxBytes != 1<<20 || got.Storage != kv.StorageMemory ||
		got.LimitMarkerTTL != 2*time.Second || !got.AllowTTL || got.Description != "d" || got.Replicas != 1 {
		t.Errorf("status config = %+v", got)
	}

	b2, err := c.CreateOrUpdateBucket(ctx, changed)
	if err != nil {
		t.Fatalf("create or update: %v", err)
	}
	if st, _ := b2.Status(ctx); st.Config.History != 2 {
		t.Errorf("history after update = %d", st.Config.History)
	}
	opened, err := c.Bucket(ctx, "cfg")
	if err != nil || opened.Name() != "cfg" || opened.Stream() != "KV_cfg" {
		t.Fatalf("open: %v", err)
	}

	ttl, err := c.CreateBucket(ctx, kv.BucketConfig{Name: "ttl", AllowTTL: true})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := ttl.Status(ctx); !st.Config.AllowTTL || st.Config.LimitMarkerTTL != 0 {
		t.Errorf("allow ttl config = %+v", st.Config)
	}

	if err := c.DeleteBucket(ctx, "cfg"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Bucket(ctx, "cfg"); !errors.Is(err, kv.ErrBucketNotFound) {
		t.Errorf("open deleted bucket: %v", err)
	}
}

func TestBucketConfigValidation(t *testing.T) {
	srv := natstest.Start(t)
	c := connect(t, srv)
	ctx := testCtx(t)
	for _, cfg := range []kv.BucketConfig{
		{Name: ""},
		{Name: "a.b"},
		{Name: "a b"},
		{Name: "ok", History: 65},
		{Name: "ok", MaxBytes: -1},
		{Name: "ok", MaxAge: -time.Second},
		{Name: "ok", Replicas: 7},
		{Name: "ok", LimitMarkerTTL: time.Millisecond},
	} {
		if _, err := c.CreateBucket(ctx, cfg); !errors.Is(err, kv.ErrInvalidConfig) {
			t.Errorf("CreateBucket(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
	if _, err := c.Bucket(ctx, "bad name"); !errors.Is(err, kv.ErrInvalidConfig) {
		t.Errorf("Bucket(bad name) = %v", err)
	}
}

// Limit markers turn an age-out into a purge update for a connected watcher.
func TestLimitMarkerDeliveredAsPurge(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{MaxAge: time.Second, LimitMarkerTTL: time.Second})
	e.put(t, "a", "1")
	w, err := e.b.Watch(e.ctx, kv.All(), kv.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	untilSynced(t, w, nil)
	u := next(t, w)
	if u.Key != "a" || u.Op != kv.OpPurge {
		t.Fatalf("age-out = %+v, want a purge of a", u)
	}
}
