// Package kv is Slipstream's NATS JetStream key-value client: connection management with
// credentials and TLS, bucket administration, reads (Get, Entry, streaming Keys and Scan),
// writes with compare-and-swap, and a Watcher that streams a bucket's updates from a cursor.
//
// The Watcher is built on a jetstream ordered consumer rather than KeyValue.Watch, decodes
// KV operations from message headers itself, and, when given the caller's FoldState,
// verifies a resume: NATS silently starts a consumer at the stream's first sequence when
// asked for an evicted one, so the watcher proves that nothing the fold depends on was
// lost, or reports ErrCursorExpired (see docs/cursor-expiry.md and verify.go).
//
// Errors are the sentinels in types.go and errors.go, matched with errors.Is.
package kv
