package agent

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Log attribute keys.
const (
	logPhase  = "phase"
	logCursor = "cursor"
	logError  = "error"
	logBucket = "bucket"
	logSource = "source"
)

// observer is the loop's fold.Observer: it feeds the watch ring, the state machine and the
// metrics. It runs on the loop's goroutine after each batch is durable and never blocks.
type observer struct {
	tracker *tracker
	ring    *ring
	metrics *metrics
	log     *slog.Logger
	// onSeeded is told when the loop replaced the store (the reads switch to it); it
	// returns the new store's cursor.
	onSeeded func() uint64
}

var _ fold.Observer = (*observer)(nil)

func (o *observer) Applied(p fold.Progress, batch []kv.Update) {
	if why := o.ring.append(p.State.Cursor, batch); why != "" {
		o.log.Info("watch streams reset: the fold's history is not continuous", "reason", why)
	}
	o.tracker.applied(p)
	m := o.metrics
	m.cursor.Set(float64(p.State.Cursor))
	m.pending.Set(float64(p.Pending))
	if !p.OldestUnapplied.IsZero() {
		m.lag.Set(max(0, time.Since(p.OldestUnapplied).Seconds()))
	} else {
		m.lag.Set(0)
	}
	var puts, dels, purges int
	for _, u := range batch {
		switch u.Op {
		case kv.OpPut:
			puts++
		case kv.OpDelete:
			dels++
		case kv.OpPurge:
			purges++
		}
	}
	add := func(op string, n int) {
		if n > 0 {
			m.applied.WithLabelValues(op).Add(float64(n))
		}
	}
	add("put", puts)
	add("delete", dels)
	add("purge", purges)
}

func (o *observer) Event(e fold.Event) {
	o.tracker.event(e)
	m := o.metrics
	switch e.Kind {
	case fold.EventWatchError:
		m.watchErrors.Inc()
		o.log.Warn("watch failed; the loop retries", logError, errString(e.Err))
	case fold.EventCursorExpired:
		m.cursorExpired.Inc()
		o.log.Warn("cursor expired: NATS no longer holds every update after the fold's cursor", logError, errString(e.Err))
	case fold.EventResyncStarted:
		m.resyncs.WithLabelValues("full").Inc()
		o.ring.reset(0)
		o.log.Warn("full resync with diff started")
	case fold.EventResyncDone:
		o.log.Info("full resync done", "deleted", e.Deleted)
	case fold.EventSeeded:
		m.resyncs.WithLabelValues("seed").Inc()
		m.seeds.WithLabelValues(seedSourceExport).Inc()
		var cursor uint64
		if o.onSeeded != nil {
			cursor = o.onSeeded()
		}
		o.ring.reset(cursor)
		o.log.Info("store seeded", logSource, e.Source)
	case fold.EventSynced:
		o.log.Debug("fold synced with bucket")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// timedStore measures each batch apply for slipstream_batch_apply_duration_seconds.
type timedStore struct {
	fold.Store
	h prometheus.Histogram
}

func (s timedStore) Apply(muts []fold.Mutation, st fold.State) error {
	t := time.Now()
	err := s.Store.Apply(muts, st)
	s.h.Observe(time.Since(t).Seconds())
	return err
}
