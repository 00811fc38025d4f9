package kv_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

func TestScopeValidate(t *testing.T) {
	for _, tc := range []struct {
		prefixes []string
		ok       bool
	}{
		{nil, true},
		{[]string{"a."}, true},
		{[]string{"a.", "b.c."}, true},
		{[]string{"a.", "ab."}, true}, // token-aligned: no overlap
		{[]string{""}, false},
		{[]string{"a"}, false},
		{[]string{"."}, false},
		{[]string{"a..b."}, false},
		{[]string{"a*."}, false},
		{[]string{"a.", "a."}, false},
		{[]string{"a.", "a.b."}, false},
		{[]string{"a.b.", "a."}, false},
	} {
		err := kv.Scope{Prefixes: tc.prefixes}.Validate()
		if tc.ok != (err == nil) {
			t.Errorf("Validate(%q) = %v", tc.prefixes, err)
		}
		if err != nil && !errors.Is(err, kv.ErrInvalidScope) {
			t.Errorf("Validate(%q) = %v, not ErrInvalidScope", tc.prefixes, err)
		}
	}
}

func TestScopeContainsAndSubjects(t *testing.T) {
	all := kv.All()
	if !all.IsAll() || !all.Contains("x.y") || fmt.Sprint(all.Subjects("b")) != "[$KV.b.>]" {
		t.Errorf("all scope misbehaves")
	}
	s := kv.Prefixes("a.", "c.d.")
	for key, want := range map[string]bool{"a.1": true, "a": false, "ab.1": false, "c.d.e": true, "c.e": false} {
		if s.Contains(key) != want {
			t.Errorf("Contains(%q) = %v", key, !want)
		}
	}
	if got := fmt.Sprint(s.Subjects("b")); got != "[$KV.b.a.> $KV.b.c.d.>]" {
		t.Errorf("Subjects = %s", got)
	}
}
