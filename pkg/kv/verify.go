package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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
//   - Capture the stream's last sequence L and deliver the delta (c, L] within scope. For
//     every delivered message add its key to D, asking Fold.Holds only for keys not yet in
//     D; dNew counts keys the fold does not hold, so |K_c ∪ D| = Fold.Count() + dNew.
//   - Once the delta through L is delivered (a message at or beyond L, nothing pending, or
//     the idle supervisor finds the consumer caught up), read at time T the stream's last
//     sequence L_T and its number of subjects within scope N_T, consistently (one stream
//     info for scope All; a bracket of two stream infos around a subject count for
//     prefixes). If L_T > L, writes landed meanwhile: extend L to L_T and keep delivering
//     (a few rounds, then fall back to the exact check).
//   - With L_T == L: every subject alive at T has its last message at or below c (the
//     fold holds it) or in (c, L]; such a message still exists at T, so it existed when
//     the delta passed its sequence, so it was delivered and is in D. Hence S_T ⊆ K_c ∪ D,
//     and |K_c ∪ D| == N_T means the sets are equal: no key the fold holds has vanished.
//     Supersession (history-1 rewrites) never changes the count, so ordinary restarts
//     stay delta-only however far the first sequence moved. Messages removed before
//     delivery need no special case: if their key is still alive its newer message was
//     delivered, and if it is gone the count differs.
//   - Otherwise (counts differ, capture not consistent, D over its cap) run the exact
//     check: enumerate the stream's subjects within scope (headers-only last-per-subject
//     consumer) and compare with Fold.Keys(). A key the fold holds live, absent from the
//     stream and not in D, lost information: ErrCursorExpired. A tombstone absent from
//     the stream only lost its marker: OpForget. Then OpSynced.
//
// The check never misses a key the fold holds live that vanished (no false negatives) and
// never reports loss for a key the fold does not hold live. Both directions are pinned by
// tests (verify_test.go).
//
// A small delta (at most directMaxSeqs sequences) is fetched with parallel direct gets
// instead of a consumer: creating a consumer that starts inside a history-1 stream makes
// the server walk its whole subject index to count pending messages (tens of ms at 1M
// keys), while a consumer created at L+1 is instant. The live consumer then starts after
// the delta.

// maxTrackedKeys caps D; a larger delta falls back to the exact check.
var maxTrackedKeys = 1 << 20

// directMaxSeqs is the largest delta fetched by direct gets.
var directMaxSeqs uint64 = 4096

// Tuning of the verified resume.
const (
	holdsWorkers   = 4   // parallel lookups of a frozen fold (WatchOptions.FoldFrozen)
	directWorkers  = 128 // direct gets in flight
	captureRetries = 5   // attempts at a consistent prefix-scope count
	extendRounds   = 5   // target extensions under concurrent writes
)

// exactChecks counts exact checks run (observed by tests: ordinary restarts must not
// need one).
var exactChecks atomic.Int64

// pauses counts pauses of watches whose fold was not ready yet, by cause (observed by
// tests).
var pauses struct{ counted, full atomic.Int64 }

type verifyState struct {
	fold     FoldState
	frozen   bool // WatchOptions.FoldFrozen: look keys up in resolve, not in track
	cursor   uint64
	count    uint64 // Fold.Count() at the cursor
	d        map[string]struct{}
	dNew     uint64
	overflow bool
	rounds   int
	done     <-chan struct{} // the watch's end
	ready    <-chan struct{} // WatchOptions.FoldReady: lookups wait for it
	queue    int             // capacity of the resolver's queue
	// res looks up the keys of D of a frozen fold as they come (until resolve).
	res *resolver
	// counted is the stream's count taken when the delta was delivered before the fold
	// was ready; the fold-side evaluation waits for it (whenReady).
	counted *streamCount
}

// streamCount is what countAt read: the last sequence L_T, the subjects within scope N_T,
// and whether the two are consistent.
type streamCount struct {
	last, n    uint64
	consistent bool
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
	v.d[key] = struct{}{}
	if v.frozen {
		if v.res == nil {
			v.res = newResolver(v.fold, v.queue, v.ready, v.done)
		}
		return v.res.add(key)
	}
	return v.lookup(key)
}

// lookup counts key in dNew when the fold does not hold it.
func (v *verifyState) lookup(key string) error {
	held, err := v.fold.Holds(key)
	if err != nil {
		return fmt.Errorf("verify resume: fold lookup of key %q: %w", key, err)
	}
	if !held {
		v.dNew++
	}
	return nil
}

// resolve waits for the lookups of a frozen fold's keys and adds the keys the fold does
// not hold to dNew.
func (v *verifyState) resolve() error {
	r := v.res
	if r == nil {
		return nil
	}
	v.res = nil
	missing, err := r.finish()
	v.dNew += missing
	return err
}

// resolver looks keys of a frozen fold up with holdsWorkers goroutines as they are
// tracked: the lookups overlap the delivery of the rest of the delta and each other (a
// fold read from disk spends most of a lookup loading a block, which several cores do
// side by side).
type resolver struct {
	keys    chan string
	done    <-chan struct{}
	wg      sync.WaitGroup
	missing atomic.Int64
	mu      sync.Mutex
	err     error // the first lookup error; later keys are not looked up
}

// resolverQueue is how many keys may wait for a lookup, at least: the delivery of the
// delta goes on while lookups lag (with 1024, lookups of a just-staged pebble store held
// a 10k-key delta's delivery back, and the count that follows it, by 60-100 ms). Before a
// FoldReady fold is ready, every key delivered waits: the queue is at least the watch's
// buffer, which bounds what is delivered then (pause), so the handler never waits.
const resolverQueue = 1 << 16

// newResolver starts the lookups of f, once ready is closed (nil: at once), with a queue
// of at least queue keys.
func newResolver(f FoldState, queue int, ready, done <-chan struct{}) *resolver {
	r := &resolver{keys: make(chan string, max(queue, resolverQueue)), done: done}
	for range holdsWorkers {
		r.wg.Go(func() {
			if ready != nil {
				select {
				case <-ready:
				case <-done:
					return
				}
			}
			for {
				var key string
				var ok bool
				select {
				case key, ok = <-r.keys:
				case <-done:
					return
				}
				if !ok {
					return
				}
				r.lookup(f, key)
			}
		})
	}
	return r
}

func (r *resolver) lookup(f FoldState, key string) {
	r.mu.Lock()
	failed := r.err != nil
	r.mu.Unlock()
	if failed {
		return
	}
	held, err := f.Holds(key)
	if err != nil {
		r.mu.Lock()
		if r.err == nil {
			r.err = fmt.Errorf("verify resume: fold lookup of key %q: %w", key, err)
		}
		r.mu.Unlock()
		return
	}
	if !held {
		r.missing.Add(1)
	}
}

// add queues key for a lookup (errStopped once the watch ended).
func (r *resolver) add(key string) error {
	select {
	case r.keys <- key:
		return nil
	case <-r.done:
		return errStopped
	}
}

// finish waits for the lookups of the keys added and returns how many the fold does not
// hold, or the first lookup error.
func (r *resolver) finish() (uint64, error) {
	close(r.keys)
	r.wg.Wait()
	select {
	case <-r.done:
		return 0, errStopped // the workers may have left keys unread
	default:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return uint64(r.missing.Load()), r.err
}

// startResume captures the target L and prepares the delta from cursor+1: direct gets
// for a small delta (run by begin), else an ordered consumer.
func (w *Watcher) startResume(ctx context.Context) error {
	op := fmt.Sprintf("watch bucket %q from cursor %d", w.b.name, w.opts.Cursor)
	w.st.verify = verifyState{fold: w.opts.Fold, frozen: w.opts.FoldFrozen, cursor: w.opts.Cursor,
		d: make(map[string]struct{}), done: w.ctx.Done(), ready: w.opts.FoldReady, queue: w.opts.Buffer}
	w.st.ready = w.opts.FoldReady == nil
	if w.st.ready {
		if err := w.countFold(); err != nil {
			return err
		}
	}
	w.st.phase = phaseVerify
	w.st.lastSeq = w.opts.Cursor
	w.st.fetched = w.opts.Cursor
	info, err := w.b.stream.Info(ctx)
	if err != nil {
		return mapErr(op, err)
	}
	if info.State.LastSeq < w.opts.Cursor {
		// The stream is behind the cursor: it was recreated or reset.
		return fmt.Errorf("%s: %w: stream last sequence %d is below the cursor (bucket recreated?)",
			op, ErrCursorExpired, info.State.LastSeq)
	}
	w.st.last = info.State.LastSeq
	if info.Config.AllowDirect && info.Config.Replicas <= 1 && w.st.last-w.opts.Cursor <= directMaxSeqs {
		// Direct gets may be served by replicas that lag (no read-after-write on R>1):
		// a message missed that way would break the proof, so only R1 streams use them.
		w.st.direct = true
		return nil
	}
	return w.consumerFrom(w.opts.Cursor + 1)
}

// countFold reads the fold's count at the cursor, before anything is delivered.
func (w *Watcher) countFold() error {
	count, err := w.opts.Fold.Count()
	if err != nil {
		return fmt.Errorf("watch bucket %q from cursor %d: fold count: %w", w.b.name, w.opts.Cursor, err)
	}
	w.st.verify.count = count
	return nil
}

// awaitFold waits for WatchOptions.FoldReady, then counts the fold (a small delta, fetched
// by direct gets, waits for the fold: begin). Called by begin with w.mu held.
func (w *Watcher) awaitFold() error {
	select {
	case <-w.opts.FoldReady:
	case <-w.ctx.Done():
		return errStopped
	}
	return w.foldReady()
}

// foldReady counts the fold, which may now be read. Called with w.mu held.
func (w *Watcher) foldReady() error {
	if err := w.countFold(); err != nil {
		return err
	}
	w.st.ready = true
	return nil
}

// whenReady waits for WatchOptions.FoldReady while the watch delivers the delta and
// counts the stream, then lets the verification read the fold: it evaluates a delta
// delivered and counted meanwhile and consumes again from after the last message handled
// if the watch paused (the rest of the delta, or the live updates).
func (w *Watcher) whenReady() {
	select {
	case <-w.opts.FoldReady:
	case <-w.ctx.Done():
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.ctx.Err() != nil {
		return
	}
	if err := w.resumeReady(); err != nil && !errors.Is(err, errStopped) {
		w.fail(err)
	}
}

// resumeReady is whenReady's work, with w.mu held.
func (w *Watcher) resumeReady() error {
	if err := w.foldReady(); err != nil {
		return err
	}
	if !w.st.paused {
		return nil // still delivering: finishVerify reads the fold when the delta ends
	}
	w.st.paused = false
	if c := w.st.verify.counted; c != nil {
		w.st.verify.counted = nil
		if err := w.settleCounted(*c); err != nil {
			return err
		}
	}
	from := w.st.lastSeq + 1
	if w.st.phase == phaseLive {
		from = w.st.synced + 1 // what lies between was removed or is out of scope (see handle)
	}
	if err := w.consumerFrom(from); err != nil {
		return err
	}
	return w.consume()
}

// settleCounted evaluates a delta delivered and counted before the fold was ready, if the
// count still holds: the count proves the stream's state when it was taken, and the
// watch goes on from after the last message it delivered, so a message written since
// and removed before the next consumer delivers it (a delete marker purged, a TTL) would
// go unseen. So when the stream grew since the count, the verification goes on instead
// (like an extension under concurrent writes): the rest is delivered and the stream
// counted again, now with the fold ready. Called with w.mu held.
func (w *Watcher) settleCounted(c streamCount) error {
	info, err := w.b.stream.Info(w.ctx)
	if err != nil {
		if w.ctx.Err() != nil {
			return errStopped
		}
		return mapErr(fmt.Sprintf("verify resume of bucket %q from cursor %d", w.b.name, w.st.verify.cursor), err)
	}
	if info.State.LastSeq != c.last {
		w.st.verify.rounds++
		w.st.last = max(w.st.last, info.State.LastSeq)
		return nil
	}
	if err := w.st.verify.resolve(); err != nil {
		return err
	}
	return w.evaluate(c)
}

// pause stops consuming until the fold is ready (whenReady): the delta is delivered and
// counted, or the reader's buffer is full (nobody reads before the fold is ready, and a
// handler that waits would miss the consumer's heartbeats). The consumer is deleted;
// messages it had already sent are ignored (handle). Called with w.mu held.
func (w *Watcher) pause() {
	w.st.paused = true
	if w.cc != nil {
		w.cc.Stop()
		w.cc = nil
	}
	if w.cons != nil {
		w.st.retired = w.st.consumer
		w.dropConsumer(w.ctx)
	}
}

// directResume delivers the delta with direct gets and evaluates it, extending the target
// while writes land, until the resume is settled or the rest is too large (the consumer
// then continues the verification). Called with w.mu held.
func (w *Watcher) directResume() error {
	for w.st.phase == phaseVerify && w.st.last-w.st.fetched <= directMaxSeqs {
		if err := w.directDelta(w.st.fetched+1, w.st.last); err != nil {
			return err
		}
		if err := w.finishVerify(); err != nil {
			return err
		}
	}
	return nil
}

// directDelta fetches every sequence in [from, to] with parallel direct gets and delivers
// the messages within scope in order, tracking them in D.
func (w *Watcher) directDelta(from, to uint64) error {
	if from > to {
		return nil
	}
	n := int(to - from + 1)
	msgs := make([]*jetstream.RawStreamMsg, n)
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(directWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || w.ctx.Err() != nil {
					return
				}
				m, err := w.b.stream.GetMsg(w.ctx, from+uint64(i))
				if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
					errs[i] = err
				}
				msgs[i] = m
			}
		}()
	}
	wg.Wait()
	if w.ctx.Err() != nil {
		return errStopped
	}
	for i, m := range msgs {
		if errs[i] != nil {
			return mapErr(fmt.Sprintf("watch bucket %q: get delta message %d", w.b.name, from+uint64(i)), errs[i])
		}
		if m == nil || len(m.Subject) <= len(w.b.pre) || m.Subject[:len(w.b.pre)] != w.b.pre {
			continue // removed since, or not a key
		}
		key := m.Subject[len(w.b.pre):]
		if !w.scope.Contains(key) {
			continue
		}
		if err := w.st.verify.track(key); err != nil {
			return err
		}
		u := Update{Op: opFromHeader(m.Header), Key: key, Revision: m.Sequence, Created: m.Time, Pending: to - m.Sequence}
		if u.Op == OpPut {
			u.Value = m.Data
		}
		w.st.lastSeq = m.Sequence
		w.st.progress++
		if err := w.send(u); err != nil {
			return err
		}
	}
	w.st.fetched = to
	return nil
}

// countAt reads the stream's last sequence and its number of subjects within scope at
// one point; ok is false when a consistent reading could not be had.
func (w *Watcher) countAt() (last, n uint64, ok bool, err error) {
	info, err := w.b.stream.Info(w.ctx)
	if err != nil {
		return 0, 0, false, err
	}
	if w.scope.IsAll() {
		return info.State.LastSeq, info.State.NumSubjects, true, nil
	}
	for range captureRetries {
		if n, err = w.countSubjects(w.ctx); err != nil {
			return 0, 0, false, err
		}
		after, err := w.b.stream.Info(w.ctx)
		if err != nil {
			return 0, 0, false, err
		}
		if after.State.LastSeq == info.State.LastSeq {
			return info.State.LastSeq, n, true, nil
		}
		info = after
	}
	return info.State.LastSeq, n, false, nil
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

// finishVerify evaluates the resume once the delta through the target is delivered. It
// either extends the target (writes landed; the phase stays verify), or emits OpForget
// updates for purged tombstones and OpSynced, or fails with ErrCursorExpired. Called with
// w.mu held.
//
// Before the fold is ready (WatchOptions.FoldReady) it counts the stream only, and pauses
// until then with the count (whenReady evaluates it).
func (w *Watcher) finishVerify() error {
	v := &w.st.verify
	op := fmt.Sprintf("verify resume of bucket %q from cursor %d", w.b.name, v.cursor)
	// The keys of a frozen fold are looked up while the stream is counted.
	resolved := make(chan error, 1)
	if w.st.ready {
		go func() { resolved <- v.resolve() }()
	} else {
		resolved <- nil
	}
	last, n, consistent, err := w.countAt()
	if rerr := <-resolved; rerr != nil {
		return rerr
	}
	if err != nil {
		if w.ctx.Err() != nil {
			return errStopped
		}
		return mapErr(op, err)
	}
	if consistent && last > w.st.last && v.rounds < extendRounds && !v.overflow {
		v.rounds++
		w.st.last = last
		return nil
	}
	c := streamCount{last: last, n: n, consistent: consistent}
	if !w.st.ready {
		v.counted = &c
		pauses.counted.Add(1)
		w.pause()
		return nil
	}
	return w.evaluate(c)
}

// evaluate settles a verification whose delta through the target is delivered and whose
// keys are looked up, with the stream's count c: OpForget updates for purged tombstones
// and OpSynced, or ErrCursorExpired. Called with w.mu held.
func (w *Watcher) evaluate(c streamCount) error {
	v := &w.st.verify
	last, n, consistent := c.last, c.n, c.consistent
	w.st.phase = phaseLive
	synced := max(w.st.last, w.st.lastSeq)
	exact := !consistent || last != w.st.last || v.overflow || v.count+v.dNew != n
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
	w.st.synced = synced
	return w.send(Update{Op: OpSynced, Revision: synced})
}

// exactCheck enumerates the stream's subjects within scope and compares them with the
// fold: it returns the tombstones to forget, or ErrCursorExpired for a live key that
// vanished. Called with w.mu held.
func (w *Watcher) exactCheck() ([]string, error) {
	v := &w.st.verify
	op := fmt.Sprintf("verify resume of bucket %q from cursor %d", w.b.name, v.cursor)
	inStream := make(map[string]struct{})
	err := w.b.eachLastPerSubject(w.ctx, w.filters, true, func(e Entry, _ uint64) bool {
		inStream[e.Key] = struct{}{}
		return true
	})
	if err != nil {
		if w.ctx.Err() != nil {
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

// finishIfDrained completes the verification when no message within scope is left in
// the stream between the last one handled and the target: the messages there were
// removed before delivery. Pending counts cannot answer this (the server updates them
// asynchronously after appends), so ask the stream leader for the next message by
// subject. Called with w.mu held.
func (w *Watcher) finishIfDrained() error {
	from := max(w.st.lastSeq, w.st.fetched) + 1
	for _, f := range w.scope.Subjects(w.b.name) {
		if from > w.st.last {
			break
		}
		seq, ok, err := w.b.nextSeq(w.ctx, from, f)
		if err != nil {
			if w.ctx.Err() != nil {
				return errStopped
			}
			return nil // transient: the next message or the idle check tries again
		}
		if ok && seq <= w.st.last {
			return nil // still to be delivered
		}
	}
	return w.finishVerify()
}

// nextSeq returns the sequence of the first message at or after from on subject filter,
// asking the stream leader (the msg-get API, not a direct get that a lagging replica may
// answer).
func (b *Bucket) nextSeq(ctx context.Context, from uint64, filter string) (uint64, bool, error) {
	req, err := json.Marshal(struct {
		Seq     uint64 `json:"seq"`
		NextFor string `json:"next_by_subj"`
	}{from, filter})
	if err != nil {
		return 0, false, err
	}
	msg, err := b.conn.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+b.Stream(), req)
	if err != nil {
		return 0, false, err
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, false, fmt.Errorf("decode message get response: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == codeMessageNotFound:
		return 0, false, nil
	case resp.Error != nil:
		return 0, false, fmt.Errorf("message get: %s (code %d)", resp.Error.Description, resp.Error.ErrCode)
	case resp.Message == nil:
		return 0, false, errors.New("message get: empty response")
	}
	return resp.Message.Seq, true, nil
}
