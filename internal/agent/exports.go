package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/export"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Export timings.
const (
	leaseTTL           = 30 * time.Second
	leaseAcquireTimout = 5 * time.Second
)

// Export results, the label of slipstream_exports_total.
const (
	exportSuccess = "success"
	exportFailure = "failure"
	exportSkipped = "skipped" // another agent holds the lease, or the fold is not Live
)

// ExportInfo describes the last successful export, in /v1/status as lastExport.
type ExportInfo struct {
	Object          string    `json:"object"`
	Cursor          uint64    `json:"cursor"`
	Keys            uint64    `json:"keys"`
	Bytes           int64     `json:"bytes"`
	Time            time.Time `json:"time"`
	DurationSeconds float64   `json:"durationSeconds"`
}

// errExportBusy and errNotHolder are the 409 answers of POST /v1/export.
var (
	errExportBusy     = errors.New("an export is already running")
	errNotLive        = errors.New("the fold is not Live: it exports only once caught up")
	errExportDisabled = errors.New("exports are not configured (start the agent with --export-url)")
	errUnchanged      = errors.New("nothing to export: the fold has not moved since the last export")
	errExportNotReady = errors.New("exports not ready: not connected to NATS and the export lease bucket yet, or the agent is stopping")
)

// exportOutcome is how one export ended.
type exportOutcome int

const (
	exportDone    exportOutcome = iota // uploaded (retention may have failed)
	exportFailed                       // failed: recorded in lastExportError
	exportAborted                      // shutdown, or the lease was lost or held by another
)

// leaderGate is the export election in a cluster (the fold's Kubernetes Lease): leader
// returns a context that ends when this agent stops holding the Lease, and false when it
// does not hold it now.
type leaderGate interface {
	leader() (context.Context, bool)
	describe() string // who holds the Lease, for messages
}

// errLostLease is the cause of an export's context when the agent lost the Kubernetes
// export Lease during the export.
var errLostLease = errors.New("lost the export Lease")

// exporter runs exports for the agent: on its schedule and on demand, one at a time, only
// while holding the export lease: the NATS KV lease standalone, the fold's Kubernetes
// Lease in a cluster (gate).
type exporter struct {
	a     *Agent
	loc   *export.Location
	log   *slog.Logger
	store func() fold.Store
	gate  leaderGate // nil: standalone (NATS KV lease)

	mu      sync.Mutex
	running bool
	ex      *export.Exporter // nil until the lease bucket is open
	lease   *export.Lease
	ctx     context.Context // the run context, set by run
	wg      *sync.WaitGroup // counts run and the exports it started
	closed  bool            // run returned: no more exports start
	last    uint64          // cursor of this agent's last successful export (0: none)
}

// ensure opens (creating when missing) the lease bucket and builds the Exporter.
func (e *exporter) ensure(ctx context.Context, conn *kv.Conn) error {
	e.mu.Lock()
	ready := e.ex != nil
	e.mu.Unlock()
	if ready {
		return nil
	}
	cfg := e.a.cfg
	meta := export.Meta{Bucket: cfg.Bucket, Scope: kv.Scope{Prefixes: cfg.Prefixes}, Backend: cfg.Backend}
	retention := export.Retention{Keep: cfg.ExportRetain, Grace: cfg.ExportGrace}
	if e.gate != nil {
		// In a cluster the Kubernetes Lease elects the exporter (startWith checks it).
		ex, err := export.NewExporter(export.ExporterConfig{Location: e.loc, Meta: meta, Retention: retention, Logger: e.log})
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.ex = ex
		e.mu.Unlock()
		return nil
	}
	lb, err := conn.Bucket(ctx, cfg.ExportLeaseBucket)
	if errors.Is(err, kv.ErrBucketNotFound) {
		lb, err = conn.CreateBucket(ctx, kv.BucketConfig{Name: cfg.ExportLeaseBucket})
		if errors.Is(err, kv.ErrBucketExists) {
			lb, err = conn.Bucket(ctx, cfg.ExportLeaseBucket)
		}
	}
	if err != nil {
		return fmt.Errorf("open export lease bucket %q: %w", cfg.ExportLeaseBucket, err)
	}
	lease, err := export.NewLease(export.LeaseConfig{Bucket: lb, Key: export.LeaseKey(cfg.Bucket), Holder: cfg.ExportHolder, TTL: leaseTTL})
	if err != nil {
		return err
	}
	ex, err := export.NewExporter(export.ExporterConfig{
		Location:  e.loc,
		Meta:      meta,
		Retention: retention,
		Lease:     lease,
		Logger:    e.log,
	})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.ex, e.lease = ex, lease
	e.mu.Unlock()
	return nil
}

// run drives the schedule until ctx ends; it also makes on-demand triggers possible.
func (e *exporter) run(ctx context.Context, conn *kv.Conn, wg *sync.WaitGroup) {
	e.mu.Lock()
	e.ctx, e.wg, e.closed = ctx, wg, false
	e.mu.Unlock()
	defer e.release()
	defer func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
	}()
	bo := newBackoff()
	for {
		err := e.ensure(ctx, conn)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		e.a.tracker.noteError(fmt.Errorf("export: %w", err))
		e.log.Warn("export lease bucket unavailable; retrying", logError, err)
		if !bo.sleep(ctx) {
			return
		}
	}
	next := e.nextFunc()
	if next == nil {
		<-ctx.Done() // on demand only
		return
	}
	for {
		t := time.NewTimer(time.Until(next(time.Now())))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := e.start(ctx, false); err != nil {
			e.log.Debug("scheduled export not started", logError, err)
		}
	}
}

// nextFunc returns when the next scheduled export is due, or nil without a schedule.
func (e *exporter) nextFunc() func(time.Time) time.Time {
	cfg := e.a.cfg
	switch {
	case cfg.ExportCron != nil:
		return cfg.ExportCron.Next
	case cfg.ExportInterval > 0:
		return func(now time.Time) time.Time { return now.Add(cfg.ExportInterval) }
	}
	return nil
}

// start begins one export in the background after taking the lease. Errors:
// errExportDisabled, errExportBusy, errNotLive, export.ErrLeaseHeld (another agent
// exports), or the lease store's error.
func (e *exporter) start(reqCtx context.Context, onDemand bool) error {
	return e.startWith(reqCtx, onDemand, nil)
}

// startWith is start, and then calls finished (if not nil) with the outcome of the export
// it started.
func (e *exporter) startWith(reqCtx context.Context, onDemand bool, finished func(exportOutcome)) error {
	e.mu.Lock()
	ex, lease, runCtx := e.ex, e.lease, e.ctx
	if ex == nil || runCtx == nil || e.closed {
		e.mu.Unlock()
		return errExportNotReady
	}
	if e.running {
		e.mu.Unlock()
		return errExportBusy
	}
	e.running = true
	e.mu.Unlock()
	done := func() {
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
	}
	m := e.a.metrics
	if p := e.a.tracker.phase(); p != PhaseLive {
		done()
		m.exports.WithLabelValues(exportSkipped).Inc()
		return fmt.Errorf("%w (phase %s)", errNotLive, p)
	}
	// A schedule on a quiet fold would upload the same state again and again. Not in a
	// cluster: there the controller judges ExportHealthy by the age of the last export
	// against the schedule, so a skipped export would read as an overdue one.
	e.mu.Lock()
	unchanged := !onDemand && e.gate == nil && e.last != 0 && e.last == e.a.tracker.cursor()
	e.mu.Unlock()
	if unchanged {
		done()
		m.exports.WithLabelValues(exportSkipped).Inc()
		return errUnchanged
	}
	var leaderCtx context.Context // in a cluster: ends when the Lease is lost
	var err error
	if e.gate != nil {
		var ok bool
		if leaderCtx, ok = e.gate.leader(); !ok {
			err = fmt.Errorf("%w: %s", export.ErrLeaseHeld, e.gate.describe())
		}
	} else {
		actx, cancel := context.WithTimeout(reqCtx, leaseAcquireTimout)
		err = lease.Acquire(actx)
		cancel()
	}
	if err != nil {
		done()
		if errors.Is(err, export.ErrLeaseHeld) {
			m.exports.WithLabelValues(exportSkipped).Inc()
			return err
		}
		m.exports.WithLabelValues(exportFailure).Inc()
		e.a.tracker.noteError(fmt.Errorf("export: %w", err))
		e.log.Warn("export lease unavailable; retrying at the next tick", logError, err)
		return err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		done()
		return errExportNotReady
	}
	wg := e.wg
	wg.Add(1) // run still counts in wg: never an Add at zero concurrent with Wait
	e.mu.Unlock()
	go func() {
		defer wg.Done()
		defer done()
		ctx := runCtx
		if leaderCtx != nil {
			lctx, cancel := context.WithCancelCause(runCtx)
			defer cancel(nil)
			stop := context.AfterFunc(leaderCtx, func() { cancel(errLostLease) })
			defer stop()
			ctx = lctx
		}
		out := e.exportOnce(ctx, ex, onDemand)
		if finished != nil {
			finished(out)
		}
	}()
	return nil
}

// exportOnce runs one export and records its outcome. A failure is counted, logged and
// shown in lastError and lastExportError; the next tick retries. An export aborted because
// the lease was lost is not a failure: names carry the cursor, so the upload it abandoned
// can never regress the newest export, and the new holder exports next.
func (e *exporter) exportOnce(ctx context.Context, ex *export.Exporter, onDemand bool) exportOutcome {
	attempt := time.Now().UTC()
	e.a.storeMu.RLock() // the store is not replaced (seeded) while its snapshot is read
	st := e.store()
	if st == nil {
		e.a.storeMu.RUnlock()
		return exportAborted
	}
	res, err := ex.Export(ctx, st)
	e.a.storeMu.RUnlock()
	m := e.a.metrics
	if err != nil && res.Object.Key == "" {
		if ctx.Err() != nil {
			if errors.Is(context.Cause(ctx), errLostLease) {
				m.exports.WithLabelValues(exportSkipped).Inc()
				e.log.Warn("lost the export Lease during the export: upload abandoned (it cannot regress the newest export)", logError, err)
			}
			return exportAborted // shutting down, or the lease was lost
		}
		if errors.Is(err, export.ErrLeaseHeld) || errors.Is(err, export.ErrLeaseLost) {
			m.exports.WithLabelValues(exportSkipped).Inc()
			return exportAborted
		}
		m.exports.WithLabelValues(exportFailure).Inc()
		e.a.tracker.noteError(fmt.Errorf("export failed: %w", err))
		e.a.tracker.exportAttempt(attempt, err.Error())
		e.log.Error("export failed; retrying at the next tick", logError, err, "onDemand", onDemand)
		return exportFailed
	}
	now := time.Now()
	info := ExportInfo{Object: res.Object.Key, Cursor: res.Summary.Header.Cursor, Keys: res.Summary.Header.Live,
		Bytes: res.Summary.Bytes, Time: now.UTC(), DurationSeconds: res.Duration.Seconds()}
	e.mu.Lock()
	e.last = info.Cursor
	e.mu.Unlock()
	m.exports.WithLabelValues(exportSuccess).Inc()
	m.lastExport.Set(float64(now.UnixNano()) / 1e9)
	e.a.tracker.setLastExport(info)
	e.a.tracker.exportAttempt(attempt, "")
	e.log.Info("export done", "object", info.Object, logCursor, info.Cursor, "keys", info.Keys, "bytes", info.Bytes,
		"pruned", len(res.Pruned), "onDemand", onDemand)
	if err != nil { // uploaded; retention failed
		e.a.tracker.noteError(fmt.Errorf("export retention: %w", err))
		e.log.Warn("export uploaded but retention failed", logError, err)
	}
	return exportDone
}

// release gives the lease up at shutdown so another agent can take over at once.
func (e *exporter) release() {
	e.mu.Lock()
	lease := e.lease
	e.mu.Unlock()
	if lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := lease.Release(ctx); err != nil {
		e.log.Debug("release export lease", logError, err)
	}
}
