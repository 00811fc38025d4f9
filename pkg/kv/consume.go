package kv

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// onMsg is the consumer's handler: it handles one message under mu.
func (w *Watcher) onMsg(msg jetstream.Msg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// After the watch failed (ctx cancelled) the consumer may still deliver until it is
	// stopped: nothing more may reach the reader, or a gap the failure reported would be
	// skipped silently.
	if w.closed || w.ctx.Err() != nil {
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
	if w.ctx.Err() != nil {
		return errStopped
	}
	return w.q.put(u, w.ctx.Done())
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
	if w.st.paused || (meta.consumer == w.st.retired && w.st.retired != "") {
		// Sent before pause stopped the consumer: the next consumer starts after the last
		// message handled.
		return nil
	}
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
		for w.st.phase == phaseVerify && !w.st.paused && seq > w.st.last {
			if err := w.finishVerify(); err != nil {
				return err
			}
		}
		if w.st.paused {
			return nil // evaluated once the fold is ready; this message comes again then
		}
		if w.st.phase != phaseVerify {
			break
		}
		if !w.st.ready && w.q.full() {
			// Nobody reads before the fold is ready: stop here, and go on from this message
			// then.
			pauses.full.Add(1)
			w.pause()
			return nil
		}
		if err := w.st.verify.track(u.Key); err != nil {
			return err
		}
		w.st.lastSeq = seq
		if err := w.send(u); err != nil {
			return err
		}
		switch {
		case seq >= w.st.last:
			return w.finishVerify()
		case meta.pending == 0:
			// Nothing pending, yet the target is not reached: the rest of the delta may
			// have been removed, or the pending count lags appends (it does). Ask the
			// stream whether anything within scope is left up to the target.
			return w.finishIfDrained()
		}
		return nil
	}
	if seq <= w.st.synced {
		// Sent by the server before the verification ended, and removed from the stream
		// since (superseded in a history-1 bucket): the verification found nothing left
		// up to OpSynced, so this key's newer message is beyond it and comes next.
		// Delivering this one after OpSynced would move the fold back below its cursor.
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
	if w.st.lastSeq == 0 || seq == w.st.lastSeq+1 {
		w.st.consumer = name
		w.noteRestart()
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
	w.st.consumer = name // accepted only once it proved to continue the watch
	w.noteRestart()
	return nil
}

// noteRestart counts an accepted consumer reset (see Restarts). Called with w.mu held.
func (w *Watcher) noteRestart() {
	if w.st.lastSeq > 0 {
		w.restarts.Add(1)
	}
}

// finishSync delivers OpSynced and switches to live. Called with w.mu held.
func (w *Watcher) finishSync() error {
	w.st.phase = phaseLive
	return w.send(Update{Op: OpSynced, Revision: max(w.st.last, w.st.lastSeq)})
}
