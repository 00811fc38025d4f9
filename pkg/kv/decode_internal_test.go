package kv

import (
	"context"
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
