package kv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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
	// Buffer is the capacity of the Updates channel (default 1024).
	Buffer int
}

// Watcher streams a bucket's updates within a scope. Read Updates until it is closed, then
// call Err.
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
	updates chan Update
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when the watch goroutines have ended

	cons jetstream.Consumer
	cc   jetstream.ConsumeContext

	errMu sync.Mutex
	err   error

	// mu serialises message handling with the idle supervisor and the final close.
	mu     sync.Mutex
	closed bool // Updates is closed; handlers do nothing more
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
	consumer  string // name of the current consumer; a change means the consumer was reset
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
// or it fails; then Updates is closed and Err tells why.
func (b *Bucket) Watch(ctx context.Context, scope Scope, opts WatchOptions) (*Watcher, error) {
	if err := scope.Validate(); err != nil {
		return nil, err
	}
	if opts.Cursor > 0 && opts.Fold == nil {
		return nil, fmt.Errorf("%w: a watch from cursor %d needs the fold's state to verify the resume", ErrInvalidConfig, opts.Cursor)
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
		updates: make(chan Update, opts.Buffer),
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
		close(w.updates)
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
		if err := w.directResume(); err != nil {
			return err
		}
		if err := w.consumerFrom(w.st.fetched + 1); err != nil {
			return err
		}
	}
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

// Updates returns the channel of updates, closed when the watch ends.
func (w *Watcher) Updates() <-chan Update { return w.updates }

// Err returns why the watch ended: nil after Stop or cancellation of the watch context,
// ErrCursorExpired, ErrWatchInterrupted, or another wrapped error. It returns nil while
// the watch runs.
func (w *Watcher) Err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// Stop ends the watch and waits for its goroutines; Updates is closed and Err is nil
// (unless the watch had already failed).
func (w *Watcher) Stop() {
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
	cfg.InactiveThreshold = 30 * time.Second
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

// onMsg is the consumer's handler: it handles one message under mu.
func (w *Watcher) onMsg(msg jetstream.Msg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if err := w.handle(msg); err != nil && !errors.Is(err, errStopped) {
		w.fail(err)
	}
}

// onConsumeErr receives the ordered consumer's errors. The ordered consumer recreates
// itself after missed heartbeats, deleted consumers and reconnects; a verified watch ends
// instead (see Watcher). Errors that cannot heal end any watch.
func (w *Watcher) onConsumeErr(_ jetstream.ConsumeContext, err error) {
	op := fmt.Sprintf("watch bucket %q", w.b.name)
	switch {
	case errors.Is(err, jetstream.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionClosed):
		w.fail(fmt.Errorf("%s: %w: %w", op, ErrClosed, err))
	case errors.Is(err, jetstream.ErrStreamNotFound):
		w.fail(fmt.Errorf("%s: %w: %w", op, ErrBucketNotFound, err))
	case w.opts.Fold != nil:
		w.fail(fmt.Errorf("%s: %w: %w", op, ErrWatchInterrupted, err))
	default:
		w.b.conn.log.Debug("watch consumer error; the ordered consumer recovers", "bucket", w.b.name, logKeyErr, err)
	}
}

// errStopped: the watch context ended while sending.
var errStopped = errors.New("kv: watch stopped")

// send delivers u unless the watch ends first. Called with w.mu held.
func (w *Watcher) send(u Update) error {
	select {
	case w.updates <- u:
		return nil
	case <-w.ctx.Done():
		return errStopped
	}
}

// handle decodes one message and delivers it, driving sync/verification. Called with
// w.mu held.
func (w *Watcher) handle(msg jetstream.Msg) error {
	meta, ok := parseAck(msg.Reply())
	if !ok {
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("watch bucket %q: %w", w.b.name, err)
		}
		meta = ackInfo{consumer: md.Consumer, seq: md.Sequence.Stream, pending: md.NumPending, created: md.Timestamp}
	}
	seq := meta.seq
	if meta.consumer != w.st.consumer {
		if err := w.consumerReset(meta.consumer, seq); err != nil {
			return err
		}
	}
	u := Update{
		Op:       opFromHeader(msg.Headers()),
		Key:      strings.TrimPrefix(msg.Subject(), w.b.pre),
		Revision: seq,
		Created:  meta.created,
		Pending:  meta.pending,
	}
	if u.Op == OpPut {
		u.Value = msg.Data()
	}
	w.st.progress++
	switch w.st.phase {
	case phaseSync:
		if seq > w.st.last {
			// Reached the live part before seeing the start position (it was removed or is
			// outside the scope): synced before this message.
			if err := w.finishSync(); err != nil {
				return err
			}
			break
		}
		w.st.lastSeq = seq
		if err := w.send(u); err != nil {
			return err
		}
		if seq >= w.st.last || meta.pending == 0 {
			return w.finishSync()
		}
		return nil
	case phaseVerify:
		// A message past the target: evaluate first (which may extend the target).
		for w.st.phase == phaseVerify && seq > w.st.last {
			if err := w.finishVerify(); err != nil {
				return err
			}
		}
		if w.st.phase != phaseVerify {
			break
		}
		if err := w.st.verify.track(u.Key); err != nil {
			return err
		}
		w.st.lastSeq = seq
		if err := w.send(u); err != nil {
			return err
		}
		if seq >= w.st.last || meta.pending == 0 {
			return w.finishVerify()
		}
		return nil
	}
	w.st.lastSeq = seq
	return w.send(u)
}

// consumerReset handles a message from a new consumer: the ordered consumer was recreated
// after a disconnect or missed heartbeats, starting at the last delivered sequence + 1.
func (w *Watcher) consumerReset(name string, seq uint64) error {
	if w.opts.Fold != nil {
		return fmt.Errorf("watch bucket %q: %w: consumer was reset (verified watches end here; re-watch from the applied cursor)", w.b.name, ErrWatchInterrupted)
	}
	w.st.consumer = name
	if w.st.lastSeq == 0 || seq == w.st.lastSeq+1 {
		return nil
	}
	// The server clamps a start below the first sequence without an error: make sure the
	// new consumer really started right after the last delivered message.
	info, err := w.b.stream.Info(w.ctx)
	if err != nil {
		return fmt.Errorf("watch bucket %q: %w: check stream after consumer reset: %w", w.b.name, ErrWatchInterrupted, err)
	}
	if info.State.FirstSeq > w.st.lastSeq+1 || info.State.LastSeq < w.st.lastSeq {
		return fmt.Errorf("watch bucket %q: %w: stream moved to %d..%d while the watch was at %d; updates may have been evicted",
			w.b.name, ErrWatchInterrupted, info.State.FirstSeq, info.State.LastSeq, w.st.lastSeq)
	}
	return nil
}

// finishSync delivers OpSynced and switches to live. Called with w.mu held.
func (w *Watcher) finishSync() error {
	w.st.phase = phaseLive
	return w.send(Update{Op: OpSynced, Revision: max(w.st.last, w.st.lastSeq)})
}

// idleTick is how often the supervisor checks a silent sync or verification.
const idleTick = 250 * time.Millisecond

// supervise ends the watch when its context ends (closing Updates), watches the
// connection status (verified mode) and completes a sync or a verification whose
// remaining messages vanished before delivery.
func (w *Watcher) supervise(status chan nats.Status) {
	listener := status
	defer func() {
		w.mu.Lock()
		if w.cc != nil {
			w.cc.Stop()
		}
		w.closed = true
		close(w.updates)
		w.mu.Unlock()
		if listener != nil {
			w.b.conn.nc.RemoveStatusListener(listener)
		}
		close(w.done)
	}()
	t := time.NewTicker(idleTick)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case s, ok := <-status:
			if !ok {
				status = nil
				continue
			}
			w.fail(fmt.Errorf("watch bucket %q: %w: connection %s", w.b.name, ErrWatchInterrupted, strings.ToLower(s.String())))
			return
		case <-t.C:
			w.mu.Lock()
			err := w.idleCheck()
			w.mu.Unlock()
			if err != nil && !errors.Is(err, errStopped) {
				w.fail(err)
				return
			}
		}
	}
}

// idleCheck runs with w.mu held: if the watch is still syncing or verifying and no message
// arrived since the previous tick, ask the server whether the consumer is caught up (no
// message pending and none in flight to us).
func (w *Watcher) idleCheck() error {
	if w.st.phase == phaseLive {
		return nil
	}
	if w.st.progress != w.st.idleSince {
		w.st.idleSince = w.st.progress
		return nil
	}
	if w.cons == nil || w.cc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	info, err := w.cons.Info(ctx)
	if err != nil {
		// Transient (e.g. the consumer is being recreated): try again next tick.
		return nil
	}
	if info.Name != w.st.consumer || info.NumPending != 0 || info.Delivered.Stream > max(w.st.lastSeq, w.st.fetched) {
		return nil
	}
	return w.finish()
}

// finish completes the sync or the verification. Called with w.mu held.
func (w *Watcher) finish() error {
	switch w.st.phase {
	case phaseSync:
		return w.finishSync()
	case phaseVerify:
		return w.finishVerify()
	}
	return nil
}
