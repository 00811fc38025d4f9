package kv

import (
	"fmt"
	"strings"
)

// Scope selects the keys a watch or fold covers: every key of the bucket (no prefixes), or
// the union of non-overlapping, token-aligned prefixes (each ends with "." , e.g. "route.").
type Scope struct {
	Prefixes []string
}

// All returns the scope of every key in the bucket.
func All() Scope { return Scope{} }

// Prefixes returns the scope of the keys that start with one of prefixes. Call Validate
// (Watch does) before use.
func Prefixes(prefixes ...string) Scope { return Scope{Prefixes: prefixes} }

// IsAll reports whether the scope covers every key of the bucket.
func (s Scope) IsAll() bool { return len(s.Prefixes) == 0 }

// Validate checks the prefixes: each is non-empty, made of valid key characters, ends
// with "." (so it matches whole tokens), and no prefix duplicates or contains another
// ("a." together with "a.b." would deliver "a.b.x" twice and cannot be expressed as
// non-overlapping NATS filters). Errors wrap ErrInvalidScope.
func (s Scope) Validate() error {
	for i, p := range s.Prefixes {
		if p == "" {
			return fmt.Errorf("%w: prefix %d is empty (use no prefixes for the whole bucket)", ErrInvalidScope, i)
		}
		if !strings.HasSuffix(p, ".") {
			return fmt.Errorf("%w: prefix %q must end with \".\" so it matches whole key tokens", ErrInvalidScope, p)
		}
		if err := ValidateKey(strings.TrimSuffix(p, ".")); err != nil {
			return fmt.Errorf("%w: prefix %q: %w", ErrInvalidScope, p, err)
		}
		for _, q := range s.Prefixes[:i] {
			switch {
			case p == q:
				return fmt.Errorf("%w: prefix %q is listed twice", ErrInvalidScope, p)
			case strings.HasPrefix(p, q) || strings.HasPrefix(q, p):
				return fmt.Errorf("%w: prefixes %q and %q overlap", ErrInvalidScope, q, p)
			}
		}
	}
	return nil
}

// Contains reports whether key is within the scope.
func (s Scope) Contains(key string) bool {
	if s.IsAll() {
		return true
	}
	for _, p := range s.Prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// String renders the scope for logs and errors.
func (s Scope) String() string {
	if s.IsAll() {
		return "all"
	}
	return strings.Join(s.Prefixes, ",")
}

// Subjects returns the stream subject filters for the scope in bucket: "$KV.<bucket>.>"
// for All, else one "$KV.<bucket>.<prefix>>" per prefix.
func (s Scope) Subjects(bucket string) []string {
	base := subjectPrefix(bucket)
	if s.IsAll() {
		return []string{base + ">"}
	}
	out := make([]string, len(s.Prefixes))
	for i, p := range s.Prefixes {
		out[i] = base + p + ">"
	}
	return out
}
