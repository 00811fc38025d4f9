package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// SeedConfig configures a Seeder.
type SeedConfig struct {
	// Location holds the exports (required).
	Location *Location
	// Bucket is the NATS KV bucket's name and Scope the fold's scope (required); exports
	// of another bucket or scope are rejected as foreign.
	Bucket string
	Scope  kv.Scope
	// KV, when set, is used to check that NATS can continue from a candidate's cursor
	// (a verified resume, docs/cursor-expiry.md); a candidate it cannot continue from is
	// skipped. Nil skips the check (offline import: the fold resumes, and verifies, later).
	KV *kv.Bucket
	// Dir is the fold's directory; StagingDir defaults to StagingDir(Dir).
	Dir        string
	StagingDir string
	// Open opens a store (required); the staged store and the final fold use it.
	Open OpenStore
	// MaxCandidates bounds how many exports are tried, newest first (0: all).
	MaxCandidates int
	// Object, when set, names the one export to use ("<bucket>/<name>", as listed) instead
	// of the newest usable one (agent import --from URL with a named export).
	Object string
	// CheckTimeout bounds one resume check (default 2 minutes).
	CheckTimeout time.Duration
	// Logger (default: discard). Only object names and URLs without query are logged.
	Logger *slog.Logger
}

// Seeder seeds a fold from the newest usable export.
type Seeder struct {
	cfg SeedConfig
	log *slog.Logger
}

// Rejection is a candidate export the seeder skipped, and why.
type Rejection struct {
	Object Object
	Err    error
}

// SeedResult describes a seed.
type SeedResult struct {
	// Object is the export the fold was seeded from; Summary its verified contents.
	Object  Object
	Summary Summary
	// Source is "<location>/<object key>", for status and events.
	Source string
	// Rejected lists the newer candidates skipped, newest first.
	Rejected []Rejection
	// Ignored lists object keys that are not export names.
	Ignored []string
	// Resume, set by a successful Seed with SeedConfig.KV, is the verified watch from the
	// seed's cursor (Staged.Resume): hand it to the fold's loop (fold.LoopConfig.Resume)
	// or Stop it.
	Resume *fold.Resume
}

// NewSeeder checks cfg and returns a Seeder.
func NewSeeder(cfg SeedConfig) (*Seeder, error) {
	switch {
	case cfg.Location == nil:
		return nil, errors.New("new seeder: no export location")
	case cfg.Bucket == "":
		return nil, errors.New("new seeder: no bucket name")
	case cfg.Dir == "":
		return nil, errors.New("new seeder: no fold directory")
	case cfg.Open == nil:
		return nil, errors.New("new seeder: no store opener")
	}
	if err := cfg.Scope.Validate(); err != nil {
		return nil, fmt.Errorf("new seeder: %w", err)
	}
	if cfg.StagingDir == "" {
		cfg.StagingDir = StagingDir(cfg.Dir)
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 2 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Seeder{cfg: cfg, log: log}, nil
}

// Log attribute keys.
const (
	logKeyObject   = "object"
	logKeyCursor   = "cursor"
	logKeyLocation = "location"
	logKeyErr      = "error"
)

// Find stages the newest usable export: candidates are tried newest first; each is
// downloaded and verified into the staging directory and, with cfg.KV, checked for a
// resume from its cursor. Invalid exports (ErrInvalidExport) and exports NATS cannot
// continue from (kv.ErrCursorExpired) are skipped. It returns the staged export (the
// caller commits or discards it), or an error wrapping ErrNotFound when no candidate is
// usable, or the first operational error (listing, download, NATS) - a transient
// failure must not look like "no export".
func (s *Seeder) Find(ctx context.Context) (*Staged, SeedResult, error) {
	var res SeedResult
	var ls Listing
	if s.cfg.Object != "" {
		o, err := s.cfg.Location.Stat(ctx, s.cfg.Object)
		if err != nil {
			return nil, res, fmt.Errorf("seed: %w", err)
		}
		ls.Exports = []Object{o}
	} else {
		var err error
		if ls, err = s.cfg.Location.List(ctx, s.cfg.Bucket); err != nil {
			return nil, res, fmt.Errorf("seed: %w", err)
		}
	}
	res.Ignored = ls.Ignored
	if len(ls.Ignored) > 0 {
		s.log.Warn("ignoring objects that are not exports", logKeyLocation, s.cfg.Location.String(), "count", len(ls.Ignored), "first", ls.Ignored[0])
	}
	cands := ls.Exports
	if s.cfg.MaxCandidates > 0 && len(cands) > s.cfg.MaxCandidates {
		cands = cands[:s.cfg.MaxCandidates]
	}
	for _, o := range cands {
		staged, err := s.try(ctx, o)
		if err == nil {
			res.Object, res.Summary = o, staged.Summary
			res.Source = s.cfg.Location.String() + "/" + o.Key
			return staged, res, nil
		}
		if ctx.Err() != nil {
			return nil, res, ctx.Err()
		}
		if !errors.Is(err, ErrInvalidExport) && !errors.Is(err, kv.ErrCursorExpired) {
			return nil, res, fmt.Errorf("seed from %s: %w", o.Key, err)
		}
		s.log.Warn("skipping export", logKeyObject, o.Key, logKeyCursor, o.Cursor, logKeyErr, err)
		res.Rejected = append(res.Rejected, Rejection{Object: o, Err: err})
	}
	return nil, res, fmt.Errorf("seed: %w: %d exports of bucket %q at %s, none usable", ErrNotFound, len(ls.Exports), s.cfg.Bucket, s.cfg.Location)
}

// try downloads, stages and checks one candidate.
func (s *Seeder) try(ctx context.Context, o Object) (*Staged, error) {
	r, err := s.cfg.Location.Reader(ctx, o)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The check with NATS (a verified watch from the export's cursor) starts as soon as the
	// header gives the cursor, so the server creates its consumer while the records are
	// staged; it reads the staged store once staging is done, asking what it holds for
	// each key of the delta from the index of the staged keys (IndexKeys), not from the
	// store. The loop continues that watch (staged.Resume), with the delta it delivered,
	// instead of fetching and verifying the delta again.
	var check *fold.PendingResume
	opts := StageOptions{Expect: ExpectFold(s.cfg.Bucket, s.cfg.Scope), Open: s.cfg.Open, IndexKeys: s.cfg.KV != nil}
	if s.cfg.KV != nil {
		opts.OnHeader = func(h Header) { check = fold.StartVerifyResume(ctx, s.cfg.KV, s.cfg.Scope, h.Cursor) }
	}
	staged, err := Stage(ctx, r, s.cfg.StagingDir, opts)
	if err != nil {
		check.Abort()
		return nil, err
	}
	if staged.Summary.Header.Cursor != o.Cursor {
		check.Abort()
		err := fmt.Errorf("%w: object name says cursor %d, content %d", ErrForeign, o.Cursor, staged.Summary.Header.Cursor)
		return nil, errors.Join(err, staged.Discard())
	}
	if check != nil {
		res, err := check.Finish(ctx, staged.CheckReader(), s.cfg.CheckTimeout)
		staged.DropIndex()
		if err != nil {
			return nil, errors.Join(fmt.Errorf("check resume: %w", err), staged.Discard())
		}
		staged.Resume = res
	}
	return staged, nil
}

// Seed replaces the fold in cfg.Dir with the newest usable export and returns it, open.
// old, if not nil, is the store open in cfg.Dir: it is closed only once a usable export
// has been staged and verified, right before the swap; when no export is usable (an
// error wrapping ErrNotFound) or anything fails before the swap, old stays open and
// untouched and Seed returns (nil, res, err). When the swap itself fails after old was
// closed (Staged.Replace), the old fold is back in cfg.Dir and Seed returns it reopened
// with the error, so the caller has an open store to go on with (nil if that failed too).
func (s *Seeder) Seed(ctx context.Context, old fold.Store) (fold.Store, SeedResult, error) {
	staged, res, err := s.Find(ctx)
	if err != nil {
		return nil, res, err
	}
	st, err := staged.Replace(old, s.cfg.Dir)
	if err != nil {
		s.log.Error("seeding failed at the swap", logKeyObject, res.Object.Key, logKeyErr, err)
		return st, res, fmt.Errorf("seed: %w", err)
	}
	if staged.Warning != nil {
		s.log.Warn("seeded, but cleaning up after the swap failed", logKeyErr, staged.Warning)
	}
	res.Resume = staged.Resume
	s.log.Info("seeded fold from export", logKeyObject, res.Object.Key, logKeyCursor, res.Summary.Header.Cursor,
		"records", res.Summary.Header.Count(), "rejected", len(res.Rejected))
	return st, res, nil
}

// Reseeder returns a fold.Reseeder for fold.LoopConfig.Reseed: on cursor expiry it seeds
// from the newest export NATS can continue from and returns the new store with its source
// and verified watch, or a zero fold.Reseeded when no export is usable (the loop then
// falls back to a full resync with diff). The old store is closed only when a new one
// replaces it; when the swap fails after that, the error comes with the old fold
// reopened, which the loop goes on with (a full resync) instead of the closed store.
func (s *Seeder) Reseeder() fold.Reseeder {
	return func(ctx context.Context, old fold.Store) (fold.Reseeded, error) {
		st, res, err := s.Seed(ctx, old)
		switch {
		case errors.Is(err, ErrNotFound):
			return fold.Reseeded{}, nil
		case err != nil:
			return fold.Reseeded{Store: st}, err
		}
		return fold.Reseeded{Store: st, Source: res.Source, Resume: res.Resume}, nil
	}
}

// NewReseeder is NewSeeder(cfg).Reseeder().
func NewReseeder(cfg SeedConfig) (fold.Reseeder, error) {
	s, err := NewSeeder(cfg)
	if err != nil {
		return nil, err
	}
	return s.Reseeder(), nil
}
