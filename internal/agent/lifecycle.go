package agent

import (
	"errors"
	"sync"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Phase is the agent's lifecycle phase.
type Phase string

// Phases, as reported by /v1/status and the slipstream_phase metric.
const (
	PhaseOpening    Phase = "Opening"    // loading the store
	PhaseSeeding    Phase = "Seeding"    // importing an export (cursor expired or empty store)
	PhaseCatchingUp Phase = "CatchingUp" // applying the delta since the cursor
	PhaseLive       Phase = "Live"       // the fold was verified equal to the bucket and follows it
	PhaseDegraded   Phase = "Degraded"   // NATS unreachable, bucket missing, creds refused, store error
)

// AllPhases lists every phase (for metrics).
var AllPhases = []Phase{PhaseOpening, PhaseSeeding, PhaseCatchingUp, PhaseLive, PhaseDegraded}

// cause names why the agent is Degraded; several can hold at once.
type cause string

const (
	causeConnect cause = "connect" // NATS unreachable or credentials refused at connect
	causeBucket  cause = "bucket"  // bucket missing or unavailable
	causeWatch   cause = "watch"   // the watch failed (the loop retries)
	causeHealth  cause = "health"  // the periodic bucket status check failed
	causeStore   cause = "store"   // the store failed to open or apply
)

// Status is the agent's observable state, served by /v1/status.
type Status struct {
	Phase              Phase     `json:"phase"`
	Cursor             uint64    `json:"cursor"`
	Pending            uint64    `json:"pending"`
	LagSeconds         float64   `json:"lagSeconds"`
	Keys               uint64    `json:"keys"`
	CursorExpired      uint64    `json:"cursorExpired"`
	Resyncs            uint64    `json:"resyncs"`
	SeededFrom         string    `json:"seededFrom"`
	LastError          string    `json:"lastError"`
	Stale              bool      `json:"stale"`
	Synced             bool      `json:"synced"`
	StreamLastSequence uint64    `json:"streamLastSequence"`
	Bucket             string    `json:"bucket"`
	Prefixes           []string  `json:"prefixes,omitempty"`
	Backend            string    `json:"backend"`
	PhaseSince         time.Time `json:"phaseSince"`
	// LastExport is the last successful export by this agent (absent: none yet).
	LastExport *ExportInfo `json:"lastExport,omitempty"`
	// LastExportAttempt is when this agent's last export that ran to an end (success or
	// failure) started; LastExportError says why it failed (empty: it succeeded).
	LastExportAttempt *time.Time `json:"lastExportAttempt,omitempty"`
	LastExportError   string     `json:"lastExportError,omitempty"`
}

// tracker owns the lifecycle state machine. It is the loop's fold.Observer (through
// observer) and is also told about connect/bucket/store conditions by the runtime.
// Phase rules:
//   - Degraded while any cause holds (reads keep being served, marked stale);
//   - else Opening until the store is open, then CatchingUp until the loop reports the
//     fold synced (state sync done or resume verified), then Live;
//   - a watch error clears "synced": after it the agent goes back through CatchingUp.
type tracker struct {
	mu       sync.Mutex
	st       Status
	opened   bool
	seeding  bool
	causes   map[cause]string
	onChange func(from, to Phase)
	now      func() time.Time
	keys     func() (uint64, bool) // current live key count from the store, if open
}

func newTracker(cfg Config, now func() time.Time, onChange func(from, to Phase)) *tracker {
	t := &tracker{causes: map[cause]string{}, now: now, onChange: onChange}
	t.st = Status{Phase: PhaseOpening, Bucket: cfg.Bucket, Prefixes: cfg.Prefixes, Backend: cfg.Backend, PhaseSince: now()}
	return t
}

// recompute sets the phase from the conditions; the caller holds mu.
func (t *tracker) recompute() {
	var p Phase
	switch {
	case len(t.causes) > 0:
		p = PhaseDegraded
	case !t.opened:
		p = PhaseOpening
	case t.seeding:
		p = PhaseSeeding
	case t.st.Synced:
		p = PhaseLive
	default:
		p = PhaseCatchingUp
	}
	t.st.Stale = p == PhaseDegraded
	if p != t.st.Phase {
		old := t.st.Phase
		t.st.Phase = p
		t.st.PhaseSince = t.now()
		if t.onChange != nil {
			t.onChange(old, p)
		}
	}
}

func (t *tracker) setCause(c cause, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.causes[c] = err.Error()
	t.st.LastError = string(c) + ": " + err.Error()
	if c == causeWatch || c == causeStore || c == causeConnect || c == causeBucket {
		t.st.Synced = false
	}
	t.recompute()
}

// noteError records a problem the agent handled by itself (lastError only).
func (t *tracker) noteError(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.LastError = err.Error()
}

func (t *tracker) clearCause(cs ...cause) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cs {
		delete(t.causes, c)
	}
	t.recompute()
}

func (t *tracker) storeOpened(st fold.State) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.opened = true
	t.st.Cursor = st.Cursor
	delete(t.causes, causeStore)
	t.recompute()
}

func (t *tracker) setStreamLast(seq uint64) {
	t.mu.Lock()
	t.st.StreamLastSequence = seq
	t.mu.Unlock()
}

// setSeeding marks the agent Seeding (importing an export) or done with it.
func (t *tracker) setSeeding(on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seeding = on
	if on {
		t.st.Synced = false
	}
	t.recompute()
}

// seeded records where the fold was seeded from.
func (t *tracker) seeded(source string) {
	t.mu.Lock()
	t.st.SeededFrom = source
	t.mu.Unlock()
}

func (t *tracker) setLastExport(e ExportInfo) {
	t.mu.Lock()
	t.st.LastExport = &e
	t.mu.Unlock()
}

// exportAttempt records the outcome of an export that started at start: failure is ""
// when it succeeded.
func (t *tracker) exportAttempt(start time.Time, failure string) {
	t.mu.Lock()
	t.st.LastExportAttempt = &start
	t.st.LastExportError = failure
	t.mu.Unlock()
}

// snapshot returns a copy of the status.
func (t *tracker) snapshot() Status {
	t.mu.Lock()
	s := t.st
	t.mu.Unlock()
	s.Prefixes = append([]string(nil), s.Prefixes...)
	if s.LastExport != nil {
		e := *s.LastExport
		s.LastExport = &e
	}
	if s.LastExportAttempt != nil {
		at := *s.LastExportAttempt
		s.LastExportAttempt = &at
	}
	if t.keys != nil {
		if n, ok := t.keys(); ok {
			s.Keys = n
		}
	}
	return s
}

func (t *tracker) cursor() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st.Cursor
}

func (t *tracker) phase() Phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st.Phase
}

func (t *tracker) stale() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st.Stale
}

// applied records a batch (called from the loop's goroutine via observer).
func (t *tracker) applied(p fold.Progress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.Cursor = p.State.Cursor
	t.st.Pending = p.Pending
	if p.OldestUnapplied.IsZero() {
		t.st.LagSeconds = 0
	} else {
		t.st.LagSeconds = max(0, t.now().Sub(p.OldestUnapplied).Seconds())
	}
	t.st.Synced = p.Synced
	// A batch applied means the watch works and the store writes: those causes cleared.
	delete(t.causes, causeWatch)
	delete(t.causes, causeStore)
	delete(t.causes, causeConnect)
	delete(t.causes, causeBucket)
	t.recompute()
}

// event records a loop event.
func (t *tracker) event(e fold.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Kind {
	case fold.EventWatchError:
		msg := "watch failed"
		if e.Err != nil {
			msg = e.Err.Error()
		}
		t.causes[causeWatch] = msg
		t.st.LastError = string(causeWatch) + ": " + msg
		t.st.Synced = false
	case fold.EventCursorExpired:
		t.st.CursorExpired++
		t.st.Synced = false
		if e.Err != nil {
			t.st.LastError = "cursor expired: " + e.Err.Error()
		}
	case fold.EventResyncStarted:
		t.st.Resyncs++
		t.st.Synced = false
	case fold.EventSeeded:
		t.st.SeededFrom = e.Source
	case fold.EventSynced:
		t.st.Synced = true
		delete(t.causes, causeWatch)
	}
	t.recompute()
}

// isNotFound reports whether err means the bucket does not exist.
func isNotFound(err error) bool { return errors.Is(err, kv.ErrBucketNotFound) }
