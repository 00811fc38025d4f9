package kv

import (
	"math"
	"strings"
	"time"

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

// ackInfo is what a JetStream message's reply subject tells about it.
type ackInfo struct {
	consumer string
	seq      uint64 // stream sequence
	pending  uint64
	created  time.Time
}

// parseAck decodes a JetStream ack reply subject without allocating (the hot path of a
// watch). Both layouts are handled:
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>
//	$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>[.<token>]
func parseAck(reply string) (ackInfo, bool) {
	const prefix = "$JS.ACK."
	if !strings.HasPrefix(reply, prefix) {
		return ackInfo{}, false
	}
	var tok [12]string
	n := 0
	rest := reply[len(prefix):]
	for n < len(tok) {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			tok[n] = rest
			n++
			break
		}
		tok[n] = rest[:i]
		n++
		rest = rest[i+1:]
	}
	var t []string
	switch n {
	case 7:
		t = tok[1:7] // consumer, delivered, sseq, dseq, ts, pending
	case 9, 10:
		t = tok[3:9]
	default:
		return ackInfo{}, false
	}
	seq, ok1 := parseDecimal(t[2])
	ts, ok2 := parseDecimal(t[4])
	pending, ok3 := parseDecimal(t[5])
	if !ok1 || !ok2 || !ok3 || ts > math.MaxInt64 {
		return ackInfo{}, false
	}
	return ackInfo{consumer: t[0], seq: seq, pending: pending, created: time.Unix(0, int64(ts))}, true
}

// parseDecimal parses a non-empty unsigned decimal without sign, prefix or underscores
// (the numbers of an ack subject), as strconv.ParseUint(s, 10, 64) would, in half its
// time (BenchmarkParseDecimal): parseAck runs once per message a watch receives.
func parseDecimal(s string) (uint64, bool) {
	const safeDigits = 19 // 10^19-1 < 2^64: no overflow is possible before the 20th digit
	if len(s) == 0 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		d := uint64(s[i]) - '0'
		if d > 9 {
			return 0, false
		}
		if i >= safeDigits && n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
