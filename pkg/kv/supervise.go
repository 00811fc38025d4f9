package kv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// idleTick is how often the supervisor checks a silent sync or verification.
const idleTick = 250 * time.Millisecond

// supervise ends the watch when its context ends (ending Next and Updates), watches the
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
		w.q.close()
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
	if w.cc == nil {
		return nil
	}
	if w.st.phase == phaseVerify {
		return w.finishIfDrained()
	}
	return w.caughtUp()
}

// caughtUp completes the state sync if the server reports the consumer caught up:
// nothing pending and nothing sent beyond what was handled. The sync's target was
// captured before the consumer was created, so the consumer's pending count covers every
// message up to it (it lags only appends made after creation). Called with w.mu held.
func (w *Watcher) caughtUp() error {
	if w.cons == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	info, err := w.cons.Info(ctx)
	if err != nil {
		// Transient (e.g. the consumer is being recreated): the idle check retries.
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
