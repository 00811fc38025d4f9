package kv

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
)

func TestParseAck(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, tc := range []struct {
		reply string
		want  ackInfo
		ok    bool
	}{
		{"$JS.ACK.KV_b.cons_1.1.42.7.1767323045000000006.9", ackInfo{"cons_1", 42, 9, ts}, true},
		{"$JS.ACK._.ACCHASH.KV_b.cons_2.1.43.8.1767323045000000006.0", ackInfo{"cons_2", 43, 0, ts}, true},
		{"$JS.ACK.hub.ACCHASH.KV_b.cons_2.1.43.8.1767323045000000006.0.rnd", ackInfo{"cons_2", 43, 0, ts}, true},
		{"$JS.ACK.KV_b.cons.1.x.7.1.9", ackInfo{}, false},
		{"_INBOX.abc", ackInfo{}, false},
		{"$JS.ACK.a.b", ackInfo{}, false},
	} {
		got, ok := parseAck(tc.reply)
		if ok != tc.ok || got.consumer != tc.want.consumer || got.seq != tc.want.seq ||
			got.pending != tc.want.pending || (ok && !got.created.Equal(tc.want.created)) {
			t.Errorf("parseAck(%q) = %+v, %v; want %+v, %v", tc.reply, got, ok, tc.want, tc.ok)
		}
	}
}

func TestOpFromHeader(t *testing.T) {
	for _, tc := range []struct {
		h    nats.Header
		want Op
	}{
		{nil, OpPut},
		{nats.Header{"Other": {"x"}}, OpPut},
		{nats.Header{hdrKVOperation: {"DEL"}}, OpDelete},
		{nats.Header{hdrKVOperation: {"PURGE"}, hdrRollup: {"sub"}}, OpPurge},
		{nats.Header{hdrMarkerReason: {"MaxAge"}}, OpPurge},
		{nats.Header{hdrMarkerReason: {"Purge"}}, OpPurge},
		{nats.Header{hdrMarkerReason: {"Remove"}}, OpDelete},
		{nats.Header{hdrKVOperation: {"DEL"}, hdrMarkerReason: {"MaxAge"}}, OpDelete},
	} {
		if got := opFromHeader(tc.h); got != tc.want {
			t.Errorf("opFromHeader(%v) = %s, want %s", tc.h, got, tc.want)
		}
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v       string
		a, b, c int
		want    bool
	}{
		{"2.10.0", 2, 10, 0, true},
		{"2.9.25", 2, 10, 0, false},
		{"2.11.0-beta.1", 2, 11, 0, true},
		{"v2.15.2", 2, 11, 0, true},
		{"3.0", 2, 11, 0, true},
		{"", 2, 0, 0, false},
		{"x.y", 2, 0, 0, false},
	} {
		if got := versionAtLeast(tc.v, tc.a, tc.b, tc.c); got != tc.want {
			t.Errorf("versionAtLeast(%q, %d.%d.%d) = %v", tc.v, tc.a, tc.b, tc.c, got)
		}
	}
}

// parseAck must agree with nats.go's metadata parsing on a real message.
func TestParseAckRealMessage(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := js.Publish(ctx, "s.x", []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.OrderedConsumer(ctx, "S", jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 2})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	md, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	got, ok := parseAck(msg.Reply())
	if !ok || got.consumer != md.Consumer || got.seq != md.Sequence.Stream || got.seq != 2 ||
		got.pending != md.NumPending || !got.created.Equal(md.Timestamp) {
		t.Fatalf("parseAck(%q) = %+v, %v; metadata %+v", msg.Reply(), got, ok, md)
	}
}

// parseAckStrconv decodes an ack subject with strings.Split and strconv's parsers: the
// independent reference FuzzParseAck compares parseAck with.
func parseAckStrconv(reply string) (ackInfo, bool) {
	rest, ok := strings.CutPrefix(reply, "$JS.ACK.")
	if !ok {
		return ackInfo{}, false
	}
	tok := strings.Split(rest, ".")
	switch len(tok) {
	case 7:
		tok = tok[1:]
	case 9, 10:
		tok = tok[3:]
	default:
		return ackInfo{}, false
	}
	for _, i := range []int{2, 4, 5} {
		if strings.HasPrefix(tok[i], "+") || strings.HasPrefix(tok[i], "-") {
			return ackInfo{}, false // signs strconv accepts; the server never writes one
		}
	}
	seq, err1 := strconv.ParseUint(tok[2], 10, 64)
	ts, err2 := strconv.ParseInt(tok[4], 10, 64)
	pending, err3 := strconv.ParseUint(tok[5], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return ackInfo{}, false
	}
	return ackInfo{consumer: tok[0], seq: seq, pending: pending, created: time.Unix(0, ts)}, true
}

func FuzzParseAck(f *testing.F) {
	for _, s := range []string{
		"$JS.ACK.KV_b.cons_1.1.42.7.1767323045000000006.9",
		"$JS.ACK._.ACCHASH.KV_b.cons_2.1.43.8.1767323045000000006.0",
		"$JS.ACK.hub.ACCHASH.KV_b.cons_2.1.43.8.1767323045000000006.0.rnd",
		"$JS.ACK.s.c.1.18446744073709551615.1.9223372036854775807.18446744073709551615",
		"$JS.ACK.s.c.1.18446744073709551616.1.9223372036854775808.0",
		"$JS.ACK.s.c.1.+1.1.-1.0",
		"$JS.ACK.s.c.1..1.1.0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		got, ok := parseAck(reply)
		want, wantOK := parseAckStrconv(reply)
		if ok != wantOK || got.consumer != want.consumer || got.seq != want.seq ||
			got.pending != want.pending || !got.created.Equal(want.created) {
			t.Fatalf("parseAck(%q) = %+v, %v; strconv parsing gives %+v, %v", reply, got, ok, want, wantOK)
		}
	})
}

// BenchmarkParseDecimal: parseAck parses three numbers per message a watch receives;
// strconv.ParseUint is the baseline.
func BenchmarkParseDecimal(b *testing.B) {
	nums := []string{"734512", "1767323045123456789", "265488"}
	for _, c := range []struct {
		name  string
		parse func(string) (uint64, bool)
	}{
		{"strconv", func(s string) (uint64, bool) { n, err := strconv.ParseUint(s, 10, 64); return n, err == nil }},
		{"parseDecimal", parseDecimal},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				for _, s := range nums {
					if _, ok := c.parse(s); !ok {
						b.Fatal("no parse")
					}
				}
			}
		})
	}
}
