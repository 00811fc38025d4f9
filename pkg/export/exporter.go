package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// ExporterConfig configures an Exporter.
type ExporterConfig struct {
	// Location receives the exports (required).
	Location *Location
	// Meta describes the fold (Bucket and Scope required; Created is set per export).
	Meta Meta
	// Retention is applied after each successful export (zero value: keep 1, no grace;
	// use DefaultRetention for a sane default).
	Retention Retention
	// Lease, when set, must be held to export: Export acquires (or renews) it first and
	// renews it while uploading; losing it aborts the upload.
	Lease *Lease
	// Logger (default: discard).
	Logger *slog.Logger
}

// Exporter exports a fold on demand (the agent calls Export from its cron schedule and
// from POST /v1/export). Export calls must not overlap; the agent serialises them.
type Exporter struct {
	cfg ExporterConfig
	log *slog.Logger
}

// ExportResult describes one export.
type ExportResult struct {
	Object   Object
	Summary  Summary
	Pruned   []Object
	Duration time.Duration
}

// NewExporter checks cfg and returns an Exporter.
func NewExporter(cfg ExporterConfig) (*Exporter, error) {
	if cfg.Location == nil {
		return nil, errors.New("new exporter: no export location")
	}
	if cfg.Meta.Bucket == "" {
		return nil, errors.New("new exporter: no bucket name")
	}
	if err := cfg.Meta.Scope.Validate(); err != nil {
		return nil, fmt.Errorf("new exporter: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Exporter{cfg: cfg, log: log}, nil
}

// Export takes a snapshot of st (a moment's work for the store; the fold keeps applying),
// uploads it as a new export and applies retention. Errors: ErrLeaseHeld (another
// exporter holds the lease: not a failure, skip this run), ErrLeaseLost (lost during the
// upload, which was aborted), ErrNotExportable, the transport's sentinels. A failed
// prune after a successful upload is returned with the result filled in.
func (e *Exporter) Export(ctx context.Context, st fold.Store) (ExportResult, error) {
	start := time.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if l := e.cfg.Lease; l != nil {
		if err := l.Acquire(ctx); err != nil {
			return ExportResult{}, fmt.Errorf("export: %w", err)
		}
		stop := e.keepLease(ctx, cancel)
		defer stop()
	}
	snap, err := st.Snapshot()
	if err != nil {
		return ExportResult{}, fmt.Errorf("export: snapshot fold: %w", err)
	}
	meta := e.cfg.Meta
	meta.Created = time.Now()
	obj, sum, err := e.cfg.Location.Upload(ctx, snap, meta)
	snap.Close()
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrLeaseLost) {
			err = fmt.Errorf("%w (upload aborted): %w", cause, err)
		}
		return ExportResult{}, fmt.Errorf("export: %w", err)
	}
	res := ExportResult{Object: obj, Summary: sum, Duration: time.Since(start)}
	e.log.Info("exported fold", logKeyObject, obj.Key, logKeyCursor, sum.Header.Cursor,
		"records", sum.Header.Count(), "bytes", sum.Bytes, "duration", res.Duration)
	res.Pruned, err = e.cfg.Location.Prune(ctx, meta.Bucket, e.cfg.Retention, time.Now())
	if err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	return res, nil
}

// keepLease renews the lease every TTL/3 until stop; losing it cancels ctx with
// ErrLeaseLost as the cause.
func (e *Exporter) keepLease(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	l := e.cfg.Lease
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(l.cfg.TTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := l.Renew(ctx); err != nil {
					if errors.Is(err, ErrLeaseLost) || !l.Held() {
						cancel(fmt.Errorf("%w: %w", ErrLeaseLost, err))
						return
					}
					e.log.Warn("renew export lease failed; retrying", logKeyErr, err)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}
