package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/slipstream-dev/slipstream/pkg/export"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// seedSourceExport is the source label of slipstream_seeds_total for a seed from an export
// (the object itself is in /v1/status seededFrom: object names would make unbounded labels).
const seedSourceExport = "export"

// newSeeder returns the seeder of the fold over the export location, checking with b that
// NATS can continue from a candidate's cursor.
func (a *Agent) newSeeder(b *kv.Bucket) (*export.Seeder, error) {
	return export.NewSeeder(export.SeedConfig{
		Location: a.loc,
		Bucket:   a.cfg.Bucket,
		Scope:    kv.Scope{Prefixes: a.cfg.Prefixes},
		KV:       b,
		Dir:      a.cfg.DataDir,
		Open:     export.Backend(backends.Config{Backend: a.cfg.Backend}),
		Logger:   a.log,
	})
}

// emptyStore reports whether s holds nothing at all (a new node, or a fold moved aside).
func emptyStore(s fold.Store) bool {
	if s.State() != (fold.State{}) {
		return false
	}
	st, err := s.Stats()
	return err == nil && st.Live+st.Tombstones == 0
}

// swapSeed replaces old (open in the data directory) by a staged export: reads stop using
// old, it is closed, the staged store is swapped into place and becomes what reads use.
// Exports are held off meanwhile (storeMu). On error it returns, when it could, the old
// fold again (export.Staged.Replace reopens it), which reads and the loop go on with.
func (a *Agent) swapSeed(old fold.Store, staged *export.Staged) (fold.Store, error) {
	a.storeMu.Lock()
	defer a.storeMu.Unlock()
	a.store.Store(nil)
	ns, err := staged.Replace(old, a.cfg.DataDir)
	if ns == nil {
		return nil, err
	}
	st := ns.State()
	a.ring.reset(st.Cursor)
	a.store.Store(&storeRef{ns})
	a.tracker.storeOpened(st)
	a.metrics.cursor.Set(float64(st.Cursor))
	return ns, err
}

// seedEmpty seeds an empty store from the newest usable export (phase Seeding) and
// returns the store to run the fold loop on: the seeded one, or s itself when no export
// is usable or seeding failed (the loop then syncs everything from NATS). The seeded fold
// resumes from its export's cursor, so NATS delivers only the tail after it: the returned
// Resume, the watch that verified the export's cursor, goes on with it (nil without a
// seed).
func (a *Agent) seedEmpty(ctx context.Context, s fold.Store, b *kv.Bucket) (fold.Store, *fold.Resume) {
	if a.loc == nil || !emptyStore(s) {
		return s, nil
	}
	seeder, err := a.newSeeder(b)
	if err != nil {
		a.log.Error("seeding disabled", logError, err)
		return s, nil
	}
	a.tracker.setSeeding(true)
	defer a.tracker.setSeeding(false)
	a.log.Info("empty fold: seeding from the newest usable export", "location", a.loc.String())
	staged, res, err := seeder.Find(ctx)
	switch {
	case ctx.Err() != nil:
		if staged != nil {
			_ = staged.Discard()
		}
		return s, nil
	case errors.Is(err, export.ErrNotFound):
		a.log.Info("no usable export: syncing the whole fold from NATS", "rejected", len(res.Rejected), logError, err)
		if len(res.Rejected) > 0 {
			a.tracker.noteError(fmt.Errorf("seed: %w", err))
		}
		return s, nil
	case err != nil:
		a.tracker.noteError(fmt.Errorf("seed: %w (synced from NATS instead)", err))
		a.log.Warn("seeding failed: syncing the whole fold from NATS instead", logError, err)
		return s, nil
	}
	ns, err := a.swapSeed(s, staged)
	if err != nil {
		// swapSeed hands back the old (empty) fold when it could reopen it; else open
		// whatever the directory holds.
		a.tracker.noteError(fmt.Errorf("seed: %w", err))
		a.log.Error("seeding failed at the swap; going on with the old fold", logError, err)
		if ns != nil {
			return ns, nil
		}
		return a.openStore(ctx), nil
	}
	a.tracker.seeded(res.Source)
	a.metrics.seeds.WithLabelValues(seedSourceExport).Inc()
	a.log.Info("seeded fold from export", logSource, res.Source, logCursor, res.Summary.Header.Cursor,
		"keys", res.Summary.Header.Live, "rejected", len(res.Rejected))
	return ns, staged.Resume
}

// reseeder is the loop's Reseed hook: on cursor expiry, seed from the newest export NATS
// can continue from (phase Seeding); a zero fold.Reseeded when none is usable, so the loop
// falls back to a full resync with diff.
func (a *Agent) reseeder(b *kv.Bucket) fold.Reseeder {
	if a.loc == nil {
		return nil
	}
	seeder, err := a.newSeeder(b)
	if err != nil {
		a.log.Error("reseeding disabled", logError, err)
		return nil
	}
	return func(ctx context.Context, old fold.Store) (fold.Reseeded, error) {
		a.tracker.setSeeding(true)
		defer a.tracker.setSeeding(false)
		a.log.Info("cursor expired: seeding from the newest usable export", "location", a.loc.String())
		staged, res, err := seeder.Find(ctx)
		switch {
		case errors.Is(err, export.ErrNotFound):
			a.log.Warn("no usable export after cursor expiry: full resync", "rejected", len(res.Rejected))
			return fold.Reseeded{}, nil
		case err != nil:
			a.tracker.noteError(fmt.Errorf("reseed: %w (full resync instead)", err))
			return fold.Reseeded{}, err
		}
		ns, err := a.swapSeed(old, staged)
		if err != nil {
			// With ns (the old fold reopened) the loop goes on with a full resync.
			a.tracker.noteError(fmt.Errorf("reseed: %w (full resync instead)", err))
			return fold.Reseeded{Store: ns}, err
		}
		return fold.Reseeded{Store: ns, Source: res.Source, Resume: staged.Resume}, nil
	}
}
