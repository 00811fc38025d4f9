package kv_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

func TestPutGetEntry(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{History: 3})
	rev := e.put(t, "a.b", "1")
	got, err := e.b.Get(e.ctx, "a.b")
	if err != nil || string(got.Value) != "1" || got.Revision != rev || got.Op != kv.OpPut || got.Key != "a.b" || got.Created.IsZero() {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if _, err := e.b.Get(e.ctx, "missing"); !errors.Is(err, kv.ErrKeyNotFound) {
		t.Errorf("get missing: %v", err)
	}
	if _, err := e.b.Entry(e.ctx, "missing"); !errors.Is(err, kv.ErrKeyNotFound) {
		t.Errorf("entry missing: %v", err)
	}
	drev := e.del(t, "a.b")
	if _, err := e.b.Get(e.ctx, "a.b"); !errors.Is(err, kv.ErrKeyNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	ent, err := e.b.Entry(e.ctx, "a.b")
	if err != nil || ent.Op != kv.OpDelete || ent.Revision != drev {
		t.Errorf("entry of deleted = %+v, %v", ent, err)
	}
	prev, err := e.b.Purge(e.ctx, "a.b")
	if err != nil {
		t.Fatal(err)
	}
	ent, err = e.b.Entry(e.ctx, "a.b")
	if err != nil || ent.Op != kv.OpPurge || ent.Revision != prev {
		t.Errorf("entry of purged = %+v, %v", ent, err)
	}
	if n := streamInfo(t, e).State.Msgs; n != 1 {
		t.Errorf("purge kept %d messages, want only the marker", n)
	}
}

func TestCreateUpdateCAS(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	rev, err := e.b.Create(e.ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Create(e.ctx, "k", []byte("2")); !errors.Is(err, kv.ErrAlreadyExists) {
		t.Errorf("create over live key: %v", err)
	}
	if _, err := e.b.Update(e.ctx, "k", []byte("2"), rev+10); !errors.Is(err, kv.ErrRevisionMismatch) {
		t.Errorf("update with wrong revision: %v", err)
	}
	rev2, err := e.b.Update(e.ctx, "k", []byte("2"), rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("update: %d, %v", rev2, err)
	}
	if _, err := e.b.DeleteWithVersion(e.ctx, "k", rev); !errors.Is(err, kv.ErrRevisionMismatch) {
		t.Errorf("delete with stale version: %v", err)
	}
	if _, err := e.b.DeleteWithVersion(e.ctx, "k", rev2); err != nil {
		t.Errorf("delete with version: %v", err)
	}
	// Create succeeds over a delete marker.
	rev3, err := e.b.Create(e.ctx, "k", []byte("3"))
	if err != nil {
		t.Fatalf("create over delete marker: %v", err)
	}
	if got, _ := e.b.Get(e.ctx, "k"); string(got.Value) != "3" || got.Revision != rev3 {
		t.Errorf("after create: %+v", got)
	}
	if _, err := e.b.Purge(e.ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Create(e.ctx, "k", []byte("4")); err != nil {
		t.Errorf("create over purge marker: %v", err)
	}
	if _, err := e.b.Update(e.ctx, "k", []byte("x"), 0); !errors.Is(err, kv.ErrInvalidConfig) {
		t.Errorf("update with revision 0: %v", err)
	}
}

func TestInvalidKeys(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{})
	for _, key := range []string{"", ".a", "a.", "a..b", "a b", "a*", "a>", "ü"} {
		checks := map[string]error{}
		_, checks["put"] = e.b.Put(e.ctx, key, nil)
		_, checks["get"] = e.b.Get(e.ctx, key)
		_, checks["entry"] = e.b.Entry(e.ctx, key)
		_, checks["create"] = e.b.Create(e.ctx, key, nil)
		_, checks["update"] = e.b.Update(e.ctx, key, nil, 1)
		_, checks["delete"] = e.b.Delete(e.ctx, key)
		_, checks["purge"] = e.b.Purge(e.ctx, key)
		for op, err := range checks {
			if !errors.Is(err, kv.ErrInvalidKey) {
				t.Errorf("%s(%q) = %v, want ErrInvalidKey", op, key, err)
			} else if key != "" && !strings.Contains(err.Error(), key) {
				t.Errorf("%s(%q) error does not name the key: %v", op, key, err)
			}
		}
	}
	for _, key := range []string{"a", "a.b", "A-b_c/d=e.f", "0"} {
		if err := kv.ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%q) = %v", key, err)
		}
	}
}

func TestBucketLimitsMapToSentinels(t *testing.T) {
	e := newEnv(t, kv.BucketConfig{MaxBytes: 4096, MaxValueSize: 1024})
	if _, err := e.b.Put(e.ctx, "big", bytes.Repeat([]byte("x"), 2048)); !errors.Is(err, kv.ErrPayloadTooLarge) {
		t.Errorf("oversized value: %v", err)
	}
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = e.b.Put(e.ctx, "k"+strconv.Itoa(i), bytes.Repeat([]byte("x"), 500))
	}
	if !errors.Is(err, kv.ErrBucketFull) {
		t.Errorf("writes beyond max bytes: %v", err)
	}
}
