package kv

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Put writes value for key and returns its revision.
func (b *Bucket) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := ValidateKey(key); err != nil {
		return 0, err
	}
	rev, err := b.publish(ctx, &nats.Msg{Subject: b.pre + key, Data: value})
	return rev, mapErr(fmt.Sprintf("put key %q", key), err)
}

// Create writes value for key only if the key has no live value (never written, deleted
// or purged). It returns ErrAlreadyExists when the key is live.
func (b *Bucket) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := ValidateKey(key); err != nil {
		return 0, err
	}
	op := fmt.Sprintf("create key %q", key)
	rev, err := b.casPut(ctx, key, value, 0)
	if err == nil {
		return rev, nil
	}
	if !errors.Is(err, ErrRevisionMismatch) {
		return 0, mapErr(op, err)
	}
	// The subject has messages: allowed only over a delete/purge marker, and only if no
	// one writes in between (CAS on the marker's revision).
	e, gerr := b.Entry(ctx, key)
	if gerr == nil && e.Op != OpPut {
		rev, err = b.casPut(ctx, key, value, e.Revision)
		if err == nil {
			return rev, nil
		}
		if !errors.Is(err, ErrRevisionMismatch) {
			return 0, mapErr(op, err)
		}
	}
	return 0, fmt.Errorf("%s: %w", op, ErrAlreadyExists)
}

// Update writes value for key only if the key's latest revision is revision (CAS). It
// returns ErrRevisionMismatch otherwise.
func (b *Bucket) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	if err := ValidateKey(key); err != nil {
		return 0, err
	}
	if revision == 0 {
		return 0, fmt.Errorf("%w: update of key %q needs a revision (use Create for new keys)", ErrInvalidConfig, key)
	}
	rev, err := b.casPut(ctx, key, value, revision)
	return rev, mapErr(fmt.Sprintf("update key %q", key), err)
}

// casPut publishes value with an expected last subject sequence; errors are mapped.
func (b *Bucket) casPut(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	m := &nats.Msg{Subject: b.pre + key, Data: value, Header: nats.Header{}}
	m.Header[hdrExpectedSeq] = []string{strconv.FormatUint(revision, 10)}
	rev, err := b.publish(ctx, m)
	if err != nil {
		if s := sentinelFor(err); s != nil {
			return 0, fmt.Errorf("%w: %w", s, err)
		}
	}
	return rev, err
}

// Delete places a delete marker for key (history is kept) and returns its revision.
func (b *Bucket) Delete(ctx context.Context, key string) (uint64, error) {
	return b.marker(ctx, "delete", key, kvOpDel, 0)
}

// DeleteWithVersion places a delete marker only if key's latest revision is revision
// (CAS); ErrRevisionMismatch otherwise.
func (b *Bucket) DeleteWithVersion(ctx context.Context, key string, revision uint64) (uint64, error) {
	if revision == 0 {
		return 0, fmt.Errorf("%w: delete with version of key %q needs a revision", ErrInvalidConfig, key)
	}
	return b.marker(ctx, "delete", key, kvOpDel, revision)
}

// Purge places a purge marker for key, removing its earlier revisions, and returns the
// marker's revision.
func (b *Bucket) Purge(ctx context.Context, key string) (uint64, error) {
	return b.marker(ctx, "purge", key, kvOpPurge, 0)
}

func (b *Bucket) marker(ctx context.Context, verb, key, op string, revision uint64) (uint64, error) {
	if err := ValidateKey(key); err != nil {
		return 0, err
	}
	m := &nats.Msg{Subject: b.pre + key, Header: nats.Header{}}
	m.Header[hdrKVOperation] = []string{op}
	if op == kvOpPurge {
		m.Header[hdrRollup] = []string{rollupSubject}
	}
	if revision != 0 {
		m.Header[hdrExpectedSeq] = []string{strconv.FormatUint(revision, 10)}
	}
	rev, err := b.publish(ctx, m)
	return rev, mapErr(fmt.Sprintf("%s key %q", verb, key), err)
}

func (b *Bucket) publish(ctx context.Context, m *nats.Msg) (uint64, error) {
	ack, err := b.conn.js.PublishMsg(ctx, m, jetstream.WithExpectStream(b.Stream()))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}
