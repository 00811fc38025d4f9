package kv

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Verified resume (docs/cursor-expiry.md).
//
// NATS gives no error when a consumer is asked to start below the stream's first
// sequence: it silently starts at the first sequence. Interior removals (purged delete
// markers, TTL) leave no trace in the sequence numbers at all. So a resume from cursor c
// proves for itself that the fold is not missing anything:
//
//   - At the start, capture in one consistent step L (the stream's last sequence), N (the
//     number of subjects within scope at L) and Q (the number of messages in (c, L] within
//     scope, the new consumer's pending count). Consistent means no message was appended
//     between the two stream-info calls that bracket the consumer creation and the count.
//   - Deliver the delta from c+1. For every delivered message with sequence <= L, add its
//     key to D, asking Fold.Holds only for keys not yet in D; dNew counts keys the fold
//     does not hold. So |K_c ∪ D| = Fold.Count() + dNew.
//   - When the delta through L is delivered (Q messages, a message beyond L, nothing
//     pending, or the idle supervisor finds the consumer caught up):
//     every subject alive at the count has its last message at or below c (the fold holds
//     it) or in (c, L] (it existed when the consumer was created, so if all Q messages were
//     delivered it is in D): S ⊆ K_c ∪ D. If |K_c ∪ D| == N the two sets are equal and no
//     key the fold holds has vanished: history-1 rewrites (supersession) never change the
//     count, so ordinary restarts stay delta-only however far the first sequence moved.
//   - Otherwise, or when the cheap check cannot be evaluated (inconsistent capture, fewer
//     than Q messages delivered because some vanished before delivery, D over its cap),
//     run the exact check: enumerate the stream's subjects within scope (headers-only
//     last-per-subject consumer) and compare with Fold.Keys(). A key the fold holds live,
//     absent from the stream and not in D, lost information: ErrCursorExpired. A tombstone
//     absent from the stream only lost its marker: OpForget. Then OpSynced.
//
// The check never reports loss for a key the fold does not hold live, and never misses a
// key the fold holds live that vanished (no false negatives). Both directions are pinned
// by tests (verify_test.go).

// maxTrackedKeys caps D; a larger delta falls back to the exact check.
const maxTrackedKeys = 1 << 20

// exactChecks counts exact checks run (observed by tests: ordinary restarts must not
// need one).
var exactChecks atomic.Int64

// captureAttempts bounds the retries for a consistent (L, N, Q) capture under writes.
const captureAttempts = 5

type verifyState struct {
	fold       FoldState
	cursor     uint64
	count      uint64 // Fold.Count() at the cursor
	n          uint64 // subjects within scope at L
	q          uint64 // messages within scope in (cursor, L] when the consumer was created
	consistent bool
	d          map[string]struct{}
	dNew       uint64
	overflow   bool
	delivered  uint64 // delta messages with sequence <= L delivered
}

// track adds key to D.
func (v *verifyState) track(key string) error {
	if _, ok := v.d[key]; ok {
		return nil
	}
	if len(v.d) >= maxTrackedKeys {
		v.overflow = true
		return nil
	}
	held, err := v.fold.Holds(key)
	if err != nil {
		return fmt.Errorf("verify resume: fold lookup of key %q: %w", key, err)
	}
	if !held {
		v.dNew++
	}
	v.d[key] = struct{}{}
	return nil
}

// startResume captures (L, N, Q) and starts the delta consumer at cursor+1.
func (w *Watcher) startResume(ctx context.Context) error {
	op := fmt.Sprintf("watch bucket %q from cursor %d", w.b.name, w.opts.Cursor)
	count, err := w.opts.Fold.Count()
	if err != nil {
		return fmt.Errorf("%s: fold count: %w", op, err)
	}
	v := &w.st.verify
	*v = verifyState{fold: w.opts.Fold, cursor: w.opts.Cursor, count: count, d: make(map[string]struct{})}
	w.st.phase = phaseVerify
	w.st.lastSeq = w.opts.Cursor
	for attempt := 1; ; attempt++ {
		before, err := w.b.stream.Info(ctx)
		if err != nil {
			return mapErr(op, err)
		}
		if before.State.LastSeq < w.opts.Cursor {
			// The stream is behind the cursor: it was recreated or reset.
			return fmt.Errorf("%s: %w: stream last sequence %d is below the cursor (bucket recreated?)",
				op, ErrCursorExpired, before.State.LastSeq)
		}
		q, err := w.consumer(ctx, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   w.opts.Cursor + 1,
		})
		if err != nil {
			return err
		}
		var n uint64
		if !w.scope.IsAll() {
			if n, err = w.countSubjects(ctx); err != nil {
				w.dropConsumer(ctx)
				return fmt.Errorf("%s: count subjects: %w", op, err)
			}
		}
		after, err := w.b.stream.Info(ctx)
		if err != nil {
			w.dropConsumer(ctx)
			return mapErr(op, err)
		}
		if w.scope.IsAll() {
			n = after.State.NumSubjects
		}
		w.st.last = before.State.LastSeq
		v.n, v.q = n, q
		v.consistent = after.State.LastSeq == before.State.LastSeq
		if v.consistent || attempt == captureAttempts {
			break
		}
		// Writes landed during the capture: retry with a fresh consumer.
		w.dropConsumer(ctx)
	}
	// Empty delta: run evaluates right away.
	w.st.finishNow = v.q == 0
	return nil
}

// countSubjects returns the number of subjects within the (prefix) scope, as the pending
// count of a last-per-subject consumer at creation.
func (w *Watcher) countSubjects(ctx context.Context) (uint64, error) {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       true,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: 10 * time.Second,
	}
	if len(w.filters) == 1 {
		cfg.FilterSubject = w.filters[0]
	} else {
		cfg.FilterSubjects = w.filters
	}
	cons, err := w.b.conn.js.CreateConsumer(ctx, w.b.Stream(), cfg)
	if err != nil {
		return 0, err
	}
	info := cons.CachedInfo()
	// Best effort: the inactive threshold removes it anyway.
	_ = w.b.conn.js.DeleteConsumer(ctx, w.b.Stream(), info.Name)
	return info.NumPending, nil
}

// finishVerify evaluates the resume once the delta through L is delivered, emits OpForget
// updates for purged tombstones and OpSynced, or fails with ErrCursorExpired. Called with
// w.mu held.
func (w *Watcher) finishVerify() error {
	v := &w.st.verify
	w.st.phase = phaseLive
	synced := max(w.st.last, w.st.lastSeq)
	exact := !v.consistent || v.overflow || v.delivered < v.q || v.count+v.dNew != v.n
	if exact {
		exactChecks.Add(1)
		forget, err := w.exactCheck()
		if err != nil {
			return err
		}
		for _, k := range forget {
			if err := w.send(Update{Op: OpForget, Key: k, Revision: synced}); err != nil {
				return err
			}
		}
	}
	v.d = nil // release D
	return w.send(Update{Op: OpSynced, Revision: synced})
}

// exactCheck enumerates the stream's subjects within scope and compares them with the
// fold: it returns the tombstones to forget, or ErrCursorExpired for a live key that
// vanished. Called with w.mu held.
func (w *Watcher) exactCheck() ([]string, error) {
	v := &w.st.verify
	op := fmt.Sprintf("verify resume of bucket %q from cursor %d", w.b.name, v.cursor)
	inStream := make(map[string]struct{}, v.n)
	err := w.b.eachLastPerSubject(w.ctx, w.filters, true, func(e Entry, _ uint64) bool {
		inStream[e.Key] = struct{}{}
		return true
	})
	if err != nil {
		if errors.Is(err, context.Canceled) && w.ctx.Err() != nil {
			return nil, errStopped
		}
		return nil, mapErr(op+": list stream subjects", err)
	}
	var forget []string
	for ks, err := range v.fold.Keys() {
		if err != nil {
			return nil, fmt.Errorf("%s: fold keys: %w", op, err)
		}
		if _, ok := inStream[ks.Key]; ok {
			continue
		}
		if _, ok := v.d[ks.Key]; ok {
			continue
		}
		if ks.Live {
			return nil, fmt.Errorf("%s: %w: key %q is live in the fold but no longer in the bucket (its delete or its last update was evicted)",
				op, ErrCursorExpired, ks.Key)
		}
		forget = append(forget, ks.Key)
	}
	return forget, nil
}
