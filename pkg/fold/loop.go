package fold

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Defaults for LoopConfig.
const (
	DefaultBatchWindow     = 10 * time.Millisecond
	DefaultBatchMax        = 100
	DefaultBatchMaxCatchUp = 10000
	// catchUpPending is the backlog (messages pending at the server) above which a batch may
	// grow to BatchMaxCatchUp.
	catchUpPending = 1000
	watchBuffer    = 8192
	backoffMin     = 100 * time.Millisecond
	backoffMax     = 10 * time.Second
)

// ErrApplyHook wraps an error or panic of the LoopConfig.Apply hook.
var ErrApplyHook = errors.New("fold: apply hook failed")

// errFatal marks errors that stop Run instead of being retried.
type errFatal struct{ err error }

func (e errFatal) Error() string { return e.err.Error() }
func (e errFatal) Unwrap() error { return e.err }

// Loop is the applied-watch loop: watch -> batch -> parse -> apply hook -> Store.Apply ->
// Observer. The cursor a store persists never names an update that is not in the fold.
type Loop struct {
	bucket *kv.Bucket
	store  atomic.Pointer[storeRef]
	cfg    LoopConfig
	log    *slog.Logger
	synced bool
	// noDiff disables the resync diff; only tests set it, to prove the diff is what
	// removes keys that vanished while a fold was away.
	noDiff bool
	// resume is the verified watch the first runOnce continues (LoopConfig.Resume, or a
	// Reseeder's), taken once.
	resume  *Resume
	watches atomic.Int64 // see WatchesStarted
}

type storeRef struct{ s Store }

// NewLoop returns a loop folding bucket into s. Run starts it.
func NewLoop(b *kv.Bucket, s Store, cfg LoopConfig) *Loop {
	if cfg.BatchWindow <= 0 {
		cfg.BatchWindow = DefaultBatchWindow
	}
	if cfg.BatchMax <= 0 {
		cfg.BatchMax = DefaultBatchMax
	}
	if cfg.BatchMaxCatchUp < cfg.BatchMax {
		cfg.BatchMaxCatchUp = max(DefaultBatchMaxCatchUp, cfg.BatchMax)
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	l := &Loop{bucket: b, cfg: cfg, log: cfg.Logger, resume: cfg.Resume}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.store.Store(&storeRef{s})
	return l
}

// WatchesStarted is how many watches Run has started itself: one per start or restart of
// the watch; a verified Resume it continued is not one.
func (l *Loop) WatchesStarted() int64 { return l.watches.Load() }

// Store returns the store the loop currently folds into (it changes after a reseed).
func (l *Loop) Store() Store { return l.store.Load().s }

// Run folds until ctx is cancelled, then drains and persists the batch in flight and returns
// the final state. Watch failures are retried with jittered backoff and reported as
// EventWatchError; cursor expiry is recovered by Reseed or by a full resync with diff. Run
// returns an error only for a store failure or an Apply hook failure (no cursor advance).
func (l *Loop) Run(ctx context.Context) (State, error) {
	defer func() { l.resume.Stop() }() // one no watch took
	backoff := backoffMin
	for {
		progressed, err := l.runOnce(ctx)
		var fatal errFatal
		if errors.As(err, &fatal) {
			return l.Store().State(), fatal.err
		}
		if ctx.Err() != nil {
			// Shutdown: whatever ended the watch, the batch in flight was applied.
			return l.Store().State(), nil //nolint:nilerr // cancellation is the expected end
		}
		switch {
		case errors.Is(err, kv.ErrCursorExpired):
			l.cfg.Observer.Event(Event{Kind: EventCursorExpired, Err: err})
			l.log.Warn("cursor expired", "cursor", l.Store().State().Cursor, "error", err)
			if err := l.recoverExpired(ctx); err != nil {
				if errors.As(err, &fatal) {
					return l.Store().State(), fatal.err
				}
				if ctx.Err() != nil {
					return l.Store().State(), nil //nolint:nilerr // cancelled while reseeding
				}
				l.watchError(err)
			}
			backoff = backoffMin
			continue
		case err != nil:
			l.watchError(err)
		}
		if progressed {
			backoff = backoffMin
		}
		if !sleepCtx(ctx, jitter(backoff)) {
			return l.Store().State(), nil
		}
		backoff = min(backoff*2, backoffMax)
	}
}

func (l *Loop) watchError(err error) {
	l.log.Warn("watch failed; retrying", "error", err)
	l.cfg.Observer.Event(Event{Kind: EventWatchError, Err: err})
}

// recoverExpired tries the reseed hook, else marks the store for a full resync (which the
// next runOnce performs). The mark is persisted so a crash before the diff finishes resyncs
// again instead of trusting a half-diffed fold.
func (l *Loop) recoverExpired(ctx context.Context) error {
	if l.cfg.Reseed != nil {
		seed, err := l.cfg.Reseed(ctx, l.Store())
		switch {
		case err != nil:
			seed.Resume.Stop()
			if seed.Store != nil { // the Reseeder closed the old store and hands over the fold reopened
				l.store.Store(&storeRef{seed.Store})
			}
			l.log.Warn("reseed failed; falling back to full resync", "error", err)
		case seed.Store != nil:
			l.store.Store(&storeRef{seed.Store})
			l.resume.Stop()
			l.resume = seed.Resume
			l.cfg.Observer.Event(Event{Kind: EventSeeded, Source: seed.Source})
			return nil
		}
	}
	s := l.Store()
	if err := s.Apply(nil, State{Cursor: 0, Resyncing: true}); err != nil {
		return errFatal{fmt.Errorf("mark resync: %w", err)}
	}
	return nil
}

// runOnce runs one watch until it ends. progressed reports whether any batch was applied.
func (l *Loop) runOnce(ctx context.Context) (progressed bool, err error) {
	l.synced = false
	s := l.Store()
	st := s.State()
	stats, err := s.Stats()
	if err != nil {
		return false, errFatal{fmt.Errorf("read fold stats: %w", err)}
	}
	held := stats.Live + stats.Tombstones
	opts := kv.WatchOptions{Buffer: watchBuffer}
	var diff *resync
	switch {
	case st.Resyncing, st.Cursor == 0 && held > 0:
		// A full state-sync replay whose diff removes local keys the bucket no longer has.
		if !st.Resyncing {
			if err := s.Apply(nil, State{Cursor: 0, Resyncing: true}); err != nil {
				return false, errFatal{fmt.Errorf("mark resync: %w", err)}
			}
		}
		l.cfg.Observer.Event(Event{Kind: EventResyncStarted})
		l.log.Info("full resync with diff", "held", held)
		diff = &resync{seen: make([]string, 0, held)}
	case st.Cursor > 0:
		opts.Cursor = st.Cursor
		opts.Fold = FoldState(s)
	}
	w, delta, priors, err := l.resume.take(st)
	l.resume = nil
	if err != nil {
		l.log.Warn("not continuing the verified resume handed over", "error", err)
	}
	if w == nil {
		l.watches.Add(1)
		if w, err = l.bucket.Watch(ctx, l.cfg.Scope, opts); err != nil {
			return false, fmt.Errorf("start watch: %w", err)
		}
	}
	defer w.Stop()
	// The initial state sync of an empty store delivers every key once, before OpSynced:
	// its puts are fresh inserts, which lets a store skip reading what they replace.
	fresh := st.Cursor == 0 && held == 0 && !st.Resyncing
	b := &batcher{loop: l, store: s, diff: diff, fresh: fresh, priors: priors}
	progressed, err = b.run(ctx, w, delta)
	if err != nil {
		return progressed, err
	}
	if ctx.Err() != nil {
		return progressed, nil
	}
	if werr := w.Err(); werr != nil {
		return progressed, werr
	}
	return progressed, fmt.Errorf("watch ended: %w", kv.ErrWatchInterrupted)
}

// resync tracks the keys a full state-sync delivered so the diff can remove the rest.
// They are kept in a slice, sorted once when the sync ends and merged with the store's
// keys (which come in order): cheaper than a map insert per delivery and a lookup per
// stored key, and half the memory.
type resync struct {
	seen []string
}

// batch is one group of updates applied in one Store.Apply.
type batch struct {
	updates []kv.Update // data updates of the batch, for the hook and the observer
	muts    []Mutation
	cursor  uint64
	synced  bool    // the batch ends with OpSynced
	diff    *resync // set on the batch that ends a resync's state sync: the diff runs with it
	pending uint64
	oldest  time.Time
}

func (b *batch) reset() {
	clear(b.updates) // drop references to the message data of the last batch
	b.updates = b.updates[:0]
	clear(b.muts)
	b.muts = b.muts[:0]
	b.cursor = 0
	b.synced = false
	b.diff = nil
	b.pending = 0
	b.oldest = time.Time{}
}

// batcher collects updates into batches (on the goroutine reading the watch) and hands
// each full batch to the applier (a second goroutine), which runs the hook, applies the
// batch and its cursor atomically and notifies. The hand-off is bounded: one batch is
// applied while the next one fills, so NATS delivery and decoding overlap the store's
// work; the batch after that waits. Batches are applied in order, each with the cursor
// of its own last update, so the cursor still only ever names applied updates.
type batcher struct {
	loop  *Loop
	store Store
	diff  *resync // the resync in progress (until its synced batch is handed off)
	fresh bool    // keys before OpSynced are new to the store
	// priors: what the store held for the keys a verified resume looked up (Resume), for
	// their first mutations, until OpSynced.
	priors map[string]Prior

	cur    *batch      // the batch being filled
	free   chan *batch // batches ready to fill (two in all)
	work   chan *batch // full batches for the applier
	done   chan struct{}
	cancel context.CancelFunc // ends fill's wait when the applier fails
	err    error              // the applier's error, read after done is closed
	// progressed: a batch was applied; written by the applier, read after done.
	progressed bool
}

// run reads w, after the updates of delta (already read from it), until it closes or ctx
// ends; the batch in flight is always applied first.
func (b *batcher) run(ctx context.Context, w *kv.Watcher, delta []kv.Update) (progressed bool, err error) {
	b.free = make(chan *batch, 2)
	b.free <- &batch{}
	b.free <- &batch{}
	b.work = make(chan *batch)
	b.done = make(chan struct{})
	// The applier cancels fctx when it fails, which ends fill's wait for updates.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.cancel = cancel
	go b.applier()
	err = b.fill(fctx, w, delta)
	close(b.work)
	<-b.done
	if err == nil {
		err = b.err
	}
	return b.progressed, err
}

// fill is the batcher's side of run. It returns nil when the watch or ctx ended (the
// last batch handed off), or the applier's error.
//
// Updates come from the watch in slices (kv.Watcher.Next). A batch asks for as many as it
// still has room for, so while catching up on a backlog the batcher wakes about once per
// batch, not once per update; a live watch still hands over each update as it comes,
// since the watch returns early once the server has nothing more pending.
func (b *batcher) fill(ctx context.Context, w *kv.Watcher, delta []kv.Update) error {
	cfg := &b.loop.cfg
	in := delta // received from the watch; in[pos:] not yet added
	pos := 0
	open := true
	receive := func(minimum int, wait time.Duration) {
		// in is fully added by now (its updates were copied into the batch): the watch
		// may refill it.
		in, open = w.Next(ctx, in[:0], minimum, wait)
		pos = 0
		if b.fresh && w.Restarts() > 0 {
			// A state sync that resumed may repeat keys: they are no longer new.
			b.fresh = false
		}
	}
	for {
		// Wait for the first update of a batch.
		for pos == len(in) && open && ctx.Err() == nil {
			receive(1, 0)
		}
		if pos == len(in) {
			return nil // the watch ended or ctx did
		}
		select {
		case b.cur = <-b.free:
		case <-b.done:
			return b.err
		}
		b.cur.reset()
		deadline := time.Now().Add(cfg.BatchWindow)
		closed := false
		for !closed {
			for pos < len(in) && !closed && !b.full() {
				closed = b.add(in[pos])
				pos++
			}
			if closed || b.full() || !open || ctx.Err() != nil {
				break
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				break
			}
			receive(b.room(), wait)
		}
		if err := b.handOff(); err != nil {
			return err
		}
	}
}

// handOff passes the filled batch to the applier.
func (b *batcher) handOff() error {
	bt := b.cur
	b.cur = nil
	if bt.synced {
		// The state sync is complete: its diff runs with this batch, and keys after it
		// are no longer new to the store.
		bt.diff = b.diff
		b.diff = nil
		b.fresh = false
		b.priors = nil
	}
	select {
	case b.work <- bt:
		return nil
	case <-b.done:
		return b.err
	}
}

// applier applies the handed-off batches in order until work is closed or one fails.
func (b *batcher) applier() {
	defer close(b.done)
	for bt := range b.work {
		if err := b.flush(bt); err != nil {
			b.err = err
			b.cancel()
			return
		}
		b.progressed = true
		b.free <- bt
	}
}

func (b *batcher) full() bool { return b.room() <= 0 }

// room is how many more mutations the batch being filled takes: BatchMax, or
// BatchMaxCatchUp while the server has a backlog pending.
func (b *batcher) room() int {
	limit := b.loop.cfg.BatchMax
	if b.cur.pending > catchUpPending {
		limit = b.loop.cfg.BatchMaxCatchUp
	}
	return limit - len(b.cur.muts)
}

// add folds one update into the batch; it returns true when the batch must close now.
func (b *batcher) add(u kv.Update) bool {
	cfg := &b.loop.cfg
	bt := b.cur
	bt.pending = u.Pending
	switch u.Op {
	case kv.OpSynced:
		bt.synced = true
		return true
	case kv.OpForget:
		delete(b.priors, u.Key)
		bt.muts = append(bt.muts, Mutation{Op: MutForget, Key: u.Key})
		return false
	}
	bt.cursor = max(bt.cursor, u.Revision)
	if bt.oldest.IsZero() {
		bt.oldest = u.Created
	}
	if !cfg.Scope.Contains(u.Key) {
		return false
	}
	if b.diff != nil {
		b.diff.seen = append(b.diff.seen, u.Key)
	}
	if cfg.Parse != nil && !cfg.Parse(u) {
		return false
	}
	bt.updates = append(bt.updates, u)
	if u.Op == kv.OpPut {
		bt.muts = append(bt.muts, Mutation{Op: MutPut, Key: u.Key, Value: u.Value, Revision: u.Revision, Prior: b.prior(u.Key)})
	} else {
		bt.muts = append(bt.muts, Mutation{Op: MutDelete, Key: u.Key, Revision: u.Revision, Prior: b.prior(u.Key)})
	}
	return false
}

// prior is what the store holds for key before the mutation being added, when the
// batcher knows it: nothing during the state sync of an empty store, or what a verified
// resume found, for the key's first mutation only.
func (b *batcher) prior(key string) Prior {
	if b.fresh {
		return Absent
	}
	p, ok := b.priors[key]
	if ok {
		delete(b.priors, key)
	}
	return p
}

// flush runs the hook, applies the batch and its cursor atomically, then notifies. It
// runs on the applier goroutine.
func (b *batcher) flush(bt *batch) error {
	l := b.loop
	prev := b.store.State()
	next := State{Cursor: max(prev.Cursor, bt.cursor), Resyncing: prev.Resyncing}
	var resyncDeleted uint64
	if bt.synced && bt.diff != nil {
		n, err := b.diffMutations(bt)
		if err != nil {
			return errFatal{err}
		}
		resyncDeleted = n
		next.Resyncing = false
	}
	if len(bt.updates) > 0 && l.cfg.Apply != nil {
		if err := callHook(l.cfg.Apply, bt.updates); err != nil {
			return errFatal{err}
		}
	}
	if len(bt.muts) > 0 || next != prev {
		if err := b.store.Apply(bt.muts, next); err != nil {
			return errFatal{fmt.Errorf("apply batch at cursor %d: %w", next.Cursor, err)}
		}
	}
	if bt.synced {
		l.synced = true
		if bt.diff != nil {
			l.cfg.Observer.Event(Event{Kind: EventResyncDone, Deleted: resyncDeleted})
		}
		l.cfg.Observer.Event(Event{Kind: EventSynced})
	}
	l.cfg.Observer.Applied(Progress{State: next, Pending: bt.pending, OldestUnapplied: bt.oldest, Synced: l.synced}, bt.updates)
	return nil
}

// diffMutations appends to bt, for every key the fold holds but the state sync did not
// deliver, a synthetic delete (live keys, also passed to the hook) or forget (tombstones).
func (b *batcher) diffMutations(bt *batch) (uint64, error) {
	var n uint64
	if b.loop.noDiff {
		return 0, nil
	}
	snap, err := b.store.Snapshot()
	if err != nil {
		return 0, fmt.Errorf("resync diff: %w", err)
	}
	defer func() { _ = snap.Close() }()
	seen := bt.diff.seen
	slices.Sort(seen) // a resumed sync may repeat keys: the merge below skips repeats
	now := time.Now()
	prev := ""
	for e, err := range RangeKeys(snap, "", true) {
		if err != nil {
			return 0, fmt.Errorf("resync diff: %w", err)
		}
		// The merge relies on the store's key order (Reader.Range: bytewise ascending);
		// out of order it would take delivered keys for vanished ones.
		if e.Key <= prev && prev != "" {
			return 0, fmt.Errorf("resync diff: store returned key %q after %q, out of order", e.Key, prev)
		}
		prev = e.Key
		for len(seen) > 0 && seen[0] < e.Key {
			seen = seen[1:]
		}
		if len(seen) > 0 && seen[0] == e.Key {
			continue
		}
		if e.Live {
			n++
			bt.muts = append(bt.muts, Mutation{Op: MutForget, Key: e.Key})
			bt.updates = append(bt.updates, kv.Update{Op: kv.OpDelete, Key: e.Key, Revision: e.Revision, Created: now})
		} else {
			bt.muts = append(bt.muts, Mutation{Op: MutForget, Key: e.Key})
		}
	}
	return n, nil
}

func callHook(hook func([]kv.Update) error, batch []kv.Update) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic: %v", ErrApplyHook, r)
		}
	}()
	if err := hook(batch); err != nil {
		return fmt.Errorf("%w: %w", ErrApplyHook, err)
	}
	return nil
}

type nopObserver struct{}

func (nopObserver) Applied(Progress, []kv.Update) {}
func (nopObserver) Event(Event)                   {}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
