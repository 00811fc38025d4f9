package kv

import (
	"github.com/nats-io/nats.go"
)

// Headers the KV layer and the server use to mark operations.
const (
	hdrKVOperation  = "KV-Operation"       // "DEL" or "PURGE", written by KV clients
	hdrMarkerReason = "Nats-Marker-Reason" // "MaxAge", "Purge" or "Remove", written by the server
	hdrRollup       = "Nats-Rollup"
	hdrExpectedSeq  = "Nats-Expected-Last-Subject-Sequence"
	kvOpDel         = "DEL"
	kvOpPurge       = "PURGE"
	rollupSubject   = "sub"
)

// opFromHeader decodes the KV operation a message carries. Client markers
// (KV-Operation) take precedence; server limit markers map MaxAge and Purge to a purge and
// Remove to a delete, as nats.go does.
func opFromHeader(h nats.Header) Op {
	if len(h) == 0 {
		return OpPut
	}
	if v := headerValue(h, hdrKVOperation); v != "" {
		switch v {
		case kvOpDel:
			return OpDelete
		case kvOpPurge:
			return OpPurge
		}
		return OpPut
	}
	switch headerValue(h, hdrMarkerReason) {
	case "MaxAge", "Purge":
		return OpPurge
	case "Remove":
		return OpDelete
	}
	return OpPut
}

// headerValue returns the first value of key without canonicalising it (NATS headers
// are case-sensitive and these keys are written exactly like this).
func headerValue(h nats.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
