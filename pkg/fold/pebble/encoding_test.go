package pebble

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

func openRaw(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	muts := []fold.Mutation{{Op: fold.MutPut, Key: "a", Value: []byte("1"), Revision: 1}, {Op: fold.MutDelete, Key: "b", Revision: 2}}
	if err := s.Apply(muts, fold.State{Cursor: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(); err != nil {
		t.Fatalf("verify healthy store: %v", err)
	}
	return s, dir
}

// TestBadEncodingIsCorruption: values that do not decode are never served, and Verify
// finds them and any drift of the persisted counts.
func TestBadEncodingIsCorruption(t *testing.T) {
	cases := map[string]func(db *pebble.DB) error{
		"short value":  func(db *pebble.DB) error { return db.Set(entryKey("a"), []byte{1, 2}, pebble.Sync) },
		"unknown flag": func(db *pebble.DB) error { return db.Set(entryKey("a"), encodeValue(1, false, nil)[:8:8], pebble.Sync) },
		"tombstone w/ value": func(db *pebble.DB) error {
			return db.Set(entryKey("b"), append(encodeValue(2, false, nil), 'x'), pebble.Sync)
		},
		"counts drift": func(db *pebble.DB) error { return db.Set(keyCounts, counts{live: 5}.encode(), pebble.Sync) },
		"foreign key":  func(db *pebble.DB) error { return db.Set([]byte("zzz"), nil, pebble.Sync) },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			s, _ := openRaw(t)
			if err := damage(s.db); err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(); !errors.Is(err, fold.ErrCorrupted) {
				t.Fatalf("Verify = %v, want ErrCorrupted", err)
			}
		})
	}
	s, _ := openRaw(t)
	if err := s.db.Set(entryKey("a"), append(encodeValue(1, true, nil)[:8], 0x80), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get("a"); !errors.Is(err, fold.ErrCorrupted) {
		t.Fatalf("Get of a bad value = %v, want ErrCorrupted", err)
	}
	for _, err := range s.Range("", true) {
		if err != nil && !errors.Is(err, fold.ErrCorrupted) {
			t.Fatalf("Range over a bad value = %v, want ErrCorrupted", err)
		}
		if err != nil {
			break
		}
	}
	if err := s.Apply([]fold.Mutation{{Op: fold.MutPut, Key: "a", Value: []byte("2"), Revision: 3}}, fold.State{Cursor: 3}); !errors.Is(err, fold.ErrCorrupted) {
		t.Fatalf("Apply over a bad value = %v, want ErrCorrupted", err)
	}
}

func TestMissingMetadataIsCorruption(t *testing.T) {
	s, dir := openRaw(t)
	for _, k := range [][]byte{keyFormat, keyState, keyCounts} {
		if err := s.db.Delete(k, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if _, err := Open(dir, testOptions()); !errors.Is(err, fold.ErrCorrupted) {
		t.Fatalf("open without metadata = %v, want ErrCorrupted", err)
	}
}
