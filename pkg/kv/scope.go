package kv

// Scope selects the keys a watch or fold covers: every key of the bucket (no prefixes), or
// the union of non-overlapping, token-aligned prefixes (each ends with "." , e.g. "route.").
type Scope struct {
	Prefixes []string
}
