package kv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WatchOptions configures Watch.
type WatchOptions struct {
	// Cursor is the stream sequence of the last update the caller has applied. 0 starts
	// with a state sync (the latest message of every key in scope, then live updates);
	// > 0 delivers only the updates after Cursor and requires Fold.
	Cursor uint64
	// Fold is the caller's fold at Cursor. With a Fold the watch is verified: a resume
	// proves that NATS still holds every update after Cursor that the fold's state
	// depends on (see verify.go) and the watch ends with ErrWatchInterrupted on any
	// connection loss or consumer reset, so the caller re-watches from its applied cursor.
	// Without a Fold (plain mode) reconnects are handled transparently.
	Fold FoldState
	// FoldFrozen promises that Fold does not change until the resume is verified (until
	// OpSynced is delivered). The watch may then look the delta's keys up later and in
	// parallel (Fold.Holds from several goroutines), overlapping the lookups with its count
	// of the stream. A fold that applies the delta while it is delivered, as a fold loop's
	// own resume does, must leave it false.
	FoldFrozen bool
	// FoldReady, when set, is closed once Fold may be read: a fold still being built, such
	// as an export being staged, at Cursor (requires FoldFrozen). The watch does its NATS
	// work meanwhile: it delivers the delta (while the reader's buffer has room) and counts
	// the stream, then stops consuming until FoldReady; Fold is read, and OpSynced
	// delivered, only after that (after a second count if the stream grew meanwhile). A
	// small delta (direct gets) is fetched once the fold is ready.
	FoldReady <-chan struct{}
	// Buffer is how many updates the watch holds for its reader before delivery waits for
	// the reader (default 1024).
	Buffer int
}

// consumerInactive is the inactivity threshold of a watch's consumers: the server removes
// a consumer nobody consumed from for that long (a variable for tests).
var consumerInactive = 30 * time.Second

// Watcher streams a bucket's updates within a scope. Read them with Next (in slices) or
// Updates (one by one, on a channel), not both, until the watch ends; then call Err.
//
// Reconnects. In plain mode (no Fold) the ordered consumer is recreated after a connection
// loss or missed heartbeats and resumes at the last delivered revision + 1, with neither
// loss nor duplicates. If the stream's first sequence has moved past that point by then,
// the watcher cannot prove that nothing was evicted in between and ends with
// ErrWatchInterrupted. In verified mode (with a Fold) any disconnect or consumer reset ends
// the watch with ErrWatchInterrupted, because a resume must be verified against the fold
// as applied, which only the caller knows: the caller re-watches from its applied cursor.
type Watcher struct {
	b       *Bucket
	scope   Scope
	opts    WatchOptions
	filters []string // nil: unfiltered consumer (scope All)
	q       *queue
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when the watch goroutines have ended

	cons jetstream.Consumer
	cc   jetstream.ConsumeContext

	chOnce   sync.Once
	ch       chan Update // Updates' channel
	stopOnce sync.Once
	stopped  chan struct{} // closed by Stop

	errMu sync.Mutex
	err   error

	restarts atomic.Uint64 // consumer resets that resumed the watch (plain mode)

	// mu serialises message handling with the idle supervisor and the final close.
	mu     sync.Mutex
	closed bool // the queue is closed; handlers do nothing more
	st     watchState
}

// phase of a watch.
type phase uint8

const (
	phaseSync   phase = iota + 1 // state sync: waiting to reach the start position
	phaseVerify                  // verified resume: delivering the delta through L
	phaseLive                    // synced; live updates
)

type watchState struct {
	phase     phase
	last      uint64 // stream sequence captured at watch start (L)
	lastSeq   uint64 // stream sequence of the last message handled
	synced    uint64 // revision of a verified resume's OpSynced (see handle)
	consumer  string // name of the current consumer; a change means the consumer was reset
	retired   string // a consumer stopped by pause: its late messages are ignored
	ready     bool   // the fold may be read (WatchOptions.FoldReady closed, or not set)
	paused    bool   // consuming stopped until the fold is ready (pause)
	progress  uint64 // messages handled (for the idle supervisor)
	idleSince uint64 // progress value at the previous supervisor tick
	finishNow bool   // nothing to deliver before OpSynced: begin completes at once
	direct    bool   // the verified delta is small: fetch it with direct gets
	fetched   uint64 // direct gets covered every sequence up to here
	verify    verifyState
}

// Watch starts a watch on scope. It captures the starting position synchronously, so a
// missing bucket (ErrBucketNotFound), an invalid scope (ErrInvalidScope) or options
// (ErrInvalidConfig) fail here. The watch runs until ctx is cancelled, Stop is called,
// or it fails; then Next and Updates report the end and Err tells why.
func (b *Bucket) Watch(ctx context.Context, scope Scope, opts WatchOptions) (*Watcher, error) {
	if err := scope.Validate(); err != nil {
		return nil, err
	}
	if opts.Cursor > 0 && opts.Fold == nil {
		return nil, fmt.Errorf("%w: a watch from cursor %d needs the fold's state to verify the resume", ErrInvalidConfig, opts.Cursor)
	}
	if opts.FoldReady != nil && (opts.Cursor == 0 || !opts.FoldFrozen) {
		return nil, fmt.Errorf("%w: FoldReady needs a resume (a cursor) of a frozen fold (FoldFrozen)", ErrInvalidConfig)
	}
	if len(scope.Prefixes) > 1 && !b.conn.Capabilities().MultiFilter {
		return nil, fmt.Errorf("%w: watching %d prefixes needs consumers with several filters (server >= 2.10, connected to %s)",
			ErrUnsupported, len(scope.Prefixes), b.conn.nc.ConnectedServerVersion())
	}
	if opts.Buffer < 0 {
		return nil, fmt.Errorf("%w: negative watch buffer %d", ErrInvalidConfig, opts.Buffer)
	}
	if opts.Buffer == 0 {
		opts.Buffer = 1024
	}
	w := &Watcher{
		b:       b,
		scope:   scope,
		opts:    opts,
		q:       newQueue(opts.Buffer),
		stopped: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if !scope.IsAll() {
		w.filters = scope.Subjects(b.name)
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	var err error
	if opts.Cursor == 0 {
		err = w.startSync(ctx)
	} else {
		err = w.startResume(ctx)
	}
	if errors.Is(err, ErrCursorExpired) {
		// Detected before any delivery: report it like any other expiry, through Err.
		w.err = err
		w.cancel()
		w.q.close()
		close(w.done)
		return w, nil
	}
	if err != nil {
		w.dropConsumer(ctx)
		w.cancel()
		return nil, err
	}
	var status chan nats.Status
	if opts.Fold != nil {
		status = b.conn.nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	}
	// Hold mu until setup is complete: the consumer's handler and the supervisor wait for
	// it. begin releases it, off the caller's goroutine (it may send more than the buffer
	// holds before live delivery starts).
	w.mu.Lock()
	go w.supervise(status)
	go func() {
		defer w.mu.Unlock()
		if err := w.begin(); err != nil && !errors.Is(err, errStopped) {
			w.fail(err)
		}
	}()
	return w, nil
}

// begin delivers what comes before the consumer (a small verified delta fetched by
// direct gets), completes an empty sync or delta, and starts consuming. Called with w.mu
// held.
func (w *Watcher) begin() error {
	if w.st.phase == phaseVerify && w.st.direct {
		if !w.st.ready {
			if err := w.awaitFold(); err != nil {
				return err
			}
		}
		if err := w.directResume(); err != nil {
			return err
		}
		if err := w.consumerFrom(w.st.fetched + 1); err != nil {
			return err
		}
	} else if !w.st.ready {
		go w.whenReady()
	}
	return w.consume()
}

// consume starts delivery from the current consumer, completing at once what had nothing
// pending. Called with w.mu held.
func (w *Watcher) consume() error {
	cc, err := w.cons.Consume(w.onMsg,
		jetstream.PullMaxMessages(500),
		jetstream.ConsumeErrHandler(w.onConsumeErr))
	if err != nil {
		return mapErr(fmt.Sprintf("watch bucket %q", w.b.name), err)
	}
	w.cc = cc
	if w.st.finishNow {
		w.st.finishNow = false
		return w.finish()
	}
	return nil
}

// consumerFrom creates the ordered consumer for the delta or the live updates from seq.
// Nothing pending at creation completes a verification still in progress at once.
func (w *Watcher) consumerFrom(seq uint64) error {
	if err := w.ctx.Err(); err != nil {
		return errStopped
	}
	pending, err := w.consumer(w.ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   seq,
	})
	if err != nil {
		return err
	}
	w.st.finishNow = w.st.phase == phaseVerify && pending == 0
	return nil
}

// Next returns the updates the watch holds, in order, once there are at least minimum of
// them, or fewer when the last one is the last the server had pending (a quiet watch
// delivers each update at once), when wait (if > 0) elapses, or when ctx ends; the slice
// may then be empty. ok is false once the watch has ended and every update was returned.
//
// The returned slice belongs to the caller until the next call, which takes reuse (a
// slice the caller is done with, typically the one the previous call returned) as the
// watch's buffer: a steady reader allocates nothing.
func (w *Watcher) Next(ctx context.Context, reuse []Update, minimum int, wait time.Duration) (updates []Update, ok bool) {
	return w.q.next(ctx, reuse, minimum, wait)
}

// Updates returns a channel of the updates, one by one, closed when the watch ended and
// every update was read. It is a convenience over Next for readers that need no
// batching; a reader that stops early must call Stop, which releases the goroutine that
// feeds the channel.
func (w *Watcher) Updates() <-chan Update {
	w.chOnce.Do(func() {
		w.ch = make(chan Update, w.q.capacity)
		go func() {
			defer close(w.ch)
			var buf []Update
			for {
				ups, ok := w.q.next(context.Background(), buf, 1, 0)
				if !ok {
					return
				}
				for _, u := range ups {
					select {
					case w.ch <- u:
					case <-w.stopped: // the reader called Stop: nobody reads any more
						return
					}
				}
				buf = ups
			}
		}()
	})
	return w.ch
}

// Restarts is how many times the watch's consumer was recreated and resumed after the
// last delivered update (plain mode: after a reconnect or missed heartbeats). Nothing is
// lost or repeated, but a state sync that resumed is no longer last-per-key: the rest of
// it delivers every update after the resume point, so a key may come more than once
// before OpSynced. Updates received before Restarts last read 0 came before any resume.
func (w *Watcher) Restarts() uint64 { return w.restarts.Load() }

// Err returns why the watch ended: nil after Stop or cancellation of the watch context,
// ErrCursorExpired, ErrWatchInterrupted, or another wrapped error. It returns nil while
// the watch runs.
func (w *Watcher) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// Stop ends the watch and waits for its goroutines; Next and Updates report the end and Err is nil
// (unless the watch had already failed).
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() { close(w.stopped) })
	w.cancel()
	<-w.done
}

// fail records the first error that ends the watch and stops it.
func (w *Watcher) fail(err error) {
	w.errMu.Lock()
	if w.err == nil && w.ctx.Err() == nil {
		w.err = err
	}
	w.errMu.Unlock()
	w.cancel()
}

// consumer creates the ordered consumer, returning the number of messages pending for it
// at creation. Consume starts delivery later.
func (w *Watcher) consumer(ctx context.Context, cfg jetstream.OrderedConsumerConfig) (uint64, error) {
	cfg.FilterSubjects = w.filters
	cfg.InactiveThreshold = consumerInactive
	cons, err := w.b.conn.js.OrderedConsumer(ctx, w.b.Stream(), cfg)
	if err != nil {
		return 0, mapErr(fmt.Sprintf("watch bucket %q", w.b.name), err)
	}
	info := cons.CachedInfo()
	if info == nil {
		return 0, fmt.Errorf("watch bucket %q: %w: consumer info missing", w.b.name, ErrBucketUnavailable)
	}
	w.cons = cons
	w.st.consumer = info.Name
	return info.NumPending, nil
}

// dropConsumer deletes a consumer that was created but not used (best effort: its
// inactive threshold removes it anyway).
func (w *Watcher) dropConsumer(ctx context.Context) {
	if w.cons == nil {
		return
	}
	if info := w.cons.CachedInfo(); info != nil {
		_ = w.b.conn.js.DeleteConsumer(ctx, w.b.Stream(), info.Name)
	}
	w.cons = nil
}

// startSync captures the stream's last sequence and starts a last-per-subject consumer.
// The sync is complete once a message at or after that sequence is handled, the
// consumer reports nothing pending, or the idle supervisor finds it caught up (messages
// may vanish before delivery, so the last one may never come).
func (w *Watcher) startSync(ctx context.Context) error {
	info, err := w.b.stream.Info(ctx)
	if err != nil {
		return mapErr(fmt.Sprintf("watch bucket %q", w.b.name), err)
	}
	w.st.last = info.State.LastSeq
	w.st.phase = phaseSync
	pending, err := w.consumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return err
	}
	// Nothing in scope: synced at the captured position (run delivers it).
	w.st.finishNow = pending == 0
	return nil
}
