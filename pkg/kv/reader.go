package kv

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Get returns the live entry for key. A key never written, deleted or purged gives
// ErrKeyNotFound.
func (b *Bucket) Get(ctx context.Context, key string) (Entry, error) {
	e, err := b.Entry(ctx, key)
	if err != nil {
		return Entry{}, err
	}
	if e.Op != OpPut {
		return Entry{}, fmt.Errorf("get key %q: %w (%s at revision %d)", key, ErrKeyNotFound, e.Op, e.Revision)
	}
	return e, nil
}

// Entry returns the latest message for key including delete and purge markers (Op tells
// which), for CAS on a tombstone. A key without any message gives ErrKeyNotFound.
func (b *Bucket) Entry(ctx context.Context, key string) (Entry, error) {
	if err := ValidateKey(key); err != nil {
		return Entry{}, err
	}
	m, err := b.stream.GetLastMsgForSubject(ctx, b.pre+key)
	if err != nil {
		return Entry{}, mapErr(fmt.Sprintf("get key %q", key), err)
	}
	return Entry{
		Key:      key,
		Value:    m.Data,
		Revision: m.Sequence,
		Op:       opFromHeader(m.Header),
		Created:  m.Time,
	}, nil
}

// Keys yields the live keys starting with prefix ("" for all), one per key, in revision
// order of their latest message, streaming: only headers cross the wire and nothing is
// held beyond the consumer's buffer. The listing is a snapshot that ends when the
// consumer has caught up with the stream. An error ends the sequence.
func (b *Bucket) Keys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for e, err := range b.lastPerSubject(ctx, prefix, true) {
			if err != nil {
				yield("", err)
				return
			}
			if e.Op != OpPut {
				continue
			}
			if !yield(e.Key, nil) {
				return
			}
		}
	}
}

// Scan yields the live entries whose key starts with prefix ("" for all), with values,
// streaming through one last-per-subject ordered consumer (memory stays bounded by the
// consumer's buffer however large the bucket). It ends when the consumer has caught up.
func (b *Bucket) Scan(ctx context.Context, prefix string) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		for e, err := range b.lastPerSubject(ctx, prefix, false) {
			if err != nil {
				yield(Entry{}, err)
				return
			}
			if e.Op != OpPut {
				continue
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// prefixFilter returns the server-side filter for a key prefix (whole tokens only; the
// caller filters the rest) and whether a client-side check is still needed.
func (b *Bucket) prefixFilter(prefix string) (string, bool) {
	if prefix == "" {
		return b.pre + ">", false
	}
	if strings.HasSuffix(prefix, ".") && ValidateKey(strings.TrimSuffix(prefix, ".")) == nil {
		return b.pre + prefix + ">", false
	}
	i := strings.LastIndexByte(prefix, '.')
	if i <= 0 || ValidateKey(prefix[:i]) != nil {
		return b.pre + ">", true
	}
	return b.pre + prefix[:i+1] + ">", true
}

// snapshotIdle is how long a snapshot consumer may be silent before its pending count is
// checked on the server (messages can vanish before delivery, leaving no last message).
const snapshotIdle = 500 * time.Millisecond

// lastPerSubject yields the latest message of every key starting with prefix, tombstones
// included, ending when the consumer reports nothing pending.
func (b *Bucket) lastPerSubject(ctx context.Context, prefix string, headersOnly bool) iter.Seq2[Entry, error] {
	filter, clientCheck := b.prefixFilter(prefix)
	return func(yield func(Entry, error) bool) {
		op := fmt.Sprintf("list keys of bucket %q", b.name)
		err := b.eachLastPerSubject(ctx, []string{filter}, headersOnly, func(e Entry, _ uint64) bool {
			if clientCheck && !strings.HasPrefix(e.Key, prefix) {
				return true
			}
			return yield(e, nil)
		})
		if err != nil {
			yield(Entry{}, mapErr(op, err))
		}
	}
}

// eachLastPerSubject delivers the latest message of every subject matching filters to fn
// (with the consumer's pending count) until the consumer has caught up or fn returns
// false. It returns ctx errors and consumer errors unwrapped.
func (b *Bucket) eachLastPerSubject(ctx context.Context, filters []string, headersOnly bool, fn func(Entry, uint64) bool) error {
	cons, err := b.conn.js.OrderedConsumer(ctx, b.Stream(), jetstream.OrderedConsumerConfig{
		FilterSubjects:    filters,
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly:       headersOnly,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return err
	}
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return err
	}
	defer it.Stop()

	// The last message may vanish before delivery, so "pending == 0" might never be seen
	// on a message: a watchdog asks the server when the iterator is silent. It stops the
	// iterator (no per-message timers on the hot path).
	var progress, lastSeq atomic.Uint64
	var caughtUp atomic.Bool
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(snapshotIdle)
		defer t.Stop()
		var seen uint64
		for {
			select {
			case <-wctx.Done():
				it.Stop()
				return
			case <-t.C:
			}
			if p := progress.Load(); p != seen {
				seen = p
				continue
			}
			info, err := cons.Info(wctx)
			if err != nil {
				continue
			}
			if info.NumPending == 0 && info.Delivered.Stream <= lastSeq.Load() {
				caughtUp.Store(true)
				it.Stop()
				return
			}
		}
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if caughtUp.Load() {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		meta, ok := parseAck(msg.Reply())
		if !ok {
			md, err := msg.Metadata()
			if err != nil {
				return err
			}
			meta = ackInfo{seq: md.Sequence.Stream, pending: md.NumPending, created: md.Timestamp}
		}
		e := Entry{
			Key:      strings.TrimPrefix(msg.Subject(), b.pre),
			Revision: meta.seq,
			Op:       opFromHeader(msg.Headers()),
			Created:  meta.created,
		}
		if !headersOnly {
			e.Value = msg.Data()
		}
		lastSeq.Store(meta.seq)
		progress.Add(1)
		if !fn(e, meta.pending) {
			return nil
		}
		if meta.pending == 0 {
			return nil
		}
	}
}
