package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// OpenStore opens the fold store in dir, creating it when dir is missing or empty. With the
// backends package: func(dir string) (fold.Store, error) { return backends.Open(dir, cfg) }.
type OpenStore func(dir string) (fold.Store, error)

// StageOptions configures Stage and Import.
type StageOptions struct {
	// Expect is checked against the export's header (ErrForeign on mismatch).
	Expect Expect
	// Open opens the store to stage into (required). Any backend: the format does not
	// depend on the backend the export was taken from.
	Open OpenStore
	// BatchRecords and BatchBytes bound one Apply (defaults 65536 records, 32 MiB) when
	// the store is filled by Apply.
	BatchRecords int
	BatchBytes   int
	// NoBulk fills the staging store by Apply batches even when it is a BulkLoader.
	NoBulk bool
	// OnHeader, when set, is called with the export's header once it is read and matches
	// Expect, before the records are staged (seeding starts its check with NATS there).
	OnHeader func(Header)
	// IndexKeys records the staged keys in RAM (up to maxKeyIndexBytes, bulk loads only)
	// for Staged.CheckReader.
	IndexKeys bool
}

const (
	defaultBatchRecords = 1 << 16
	defaultBatchBytes   = 32 << 20
)

// Staged is a verified export in a store in its own directory, not yet the fold.
type Staged struct {
	// Store is open, at the export's cursor. Read it (for example to check a resume from
	// its cursor) before Commit; never Apply to it.
	Store   fold.Store
	Summary Summary
	// Warning is set by a successful Commit or Replace when cleaning up after the swap
	// failed (removing the replaced fold, syncing the parent directory); the new fold is
	// in place regardless.
	Warning error
	// Resume is set by a Seeder that checked with NATS that the fold can continue from the
	// export's cursor: the verified watch from there (fold.VerifyResume). After a
	// successful Commit or Replace, hand it to the fold's loop (fold.LoopConfig.Resume) or
	// Stop it; Discard and a failed Commit or Replace stop it.
	Resume *fold.Resume
	dir    string
	open   OpenStore
	keys   atomic.Pointer[keyIndex] // StageOptions.IndexKeys
}

// Dir is the staging directory.
func (s *Staged) Dir() string { return s.dir }

// CheckReader is the staged store to check a resume from its cursor against
// (fold.PendingResume.Finish): with StageOptions.IndexKeys, it tells what it holds for a
// key from the index of the staged keys (fold.PriorLooker) instead of a store lookup.
func (s *Staged) CheckReader() fold.Store {
	if s.keys.Load() == nil {
		return s.Store
	}
	return indexedStore{s.Store, &s.keys}
}

// DropIndex releases the index of the staged keys (StageOptions.IndexKeys) once the
// check is done; CheckReader's store then asks the staged store.
func (s *Staged) DropIndex() { s.keys.Store(nil) }

// Stage reads the export from src into a new store in dir (removing whatever dir held)
// and verifies it: records are applied in large batches marked Resyncing, and only after
// the trailer verified is the export's cursor recorded as consistent. On any error the
// staging directory is removed. Errors: the reader's sentinels (ErrInvalidExport), ctx's
// error, or wrapped store errors.
func Stage(ctx context.Context, src io.Reader, dir string, opts StageOptions) (*Staged, error) {
	if opts.Open == nil {
		return nil, errors.New("stage export: no store opener")
	}
	if opts.BatchRecords <= 0 {
		opts.BatchRecords = defaultBatchRecords
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = defaultBatchBytes
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("stage export: clear staging directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("stage export: %w", err)
	}
	rd, err := Open(src, opts.Expect)
	if err != nil {
		return nil, fmt.Errorf("stage export: %w", err)
	}
	if opts.OnHeader != nil {
		opts.OnHeader(rd.Header())
	}
	st, err := opts.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("stage export: open staging store: %w", err)
	}
	staged := &Staged{Store: st, dir: dir, open: opts.Open}
	if err := staged.fill(ctx, rd, opts); err != nil {
		return nil, fmt.Errorf("stage export: %w", errors.Join(err, staged.Discard()))
	}
	staged.Summary = rd.Summary()
	return staged, nil
}

func (s *Staged) fill(ctx context.Context, rd *Reader, opts StageOptions) error {
	h := rd.Header()
	if s.Store.State() != (fold.State{}) {
		return fmt.Errorf("staging store in %s is not empty", s.dir)
	}
	if bl, ok := s.Store.(BulkLoader); ok && !opts.NoBulk {
		return s.bulkFill(ctx, bl, rd, opts.IndexKeys)
	}
	// Reading, verifying and decoding run in a goroutine that hands over batches, so they
	// overlap the store's Apply.
	batches := make(chan stagedBatch, 1)
	stop := make(chan struct{})
	go readBatches(rd, opts, batches, stop)
	defer func() {
		close(stop)
		for range batches { // wait for the reader goroutine: src must not be read after return
		}
	}()
	// Until the trailer verifies, the store says "not consistent": a crash leaves a store
	// that can never be mistaken for a fold at the export's cursor.
	partial := fold.State{Cursor: h.Cursor, Resyncing: true}
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		st := partial
		if b.final {
			st = fold.State{Cursor: h.Cursor}
		}
		if err := s.Store.Apply(b.muts, st); err != nil {
			return fmt.Errorf("apply to staging store: %w", err)
		}
		if !b.final {
			continue
		}
		return s.checkFilled(h)
	}
	return errors.New("staging ended without the export's end")
}

// stagedBatch is a batch of records; final is set on the last one, sent only after the
// trailer verified.
type stagedBatch struct {
	muts  []fold.Mutation
	final bool
	err   error
}

// readBatches reads rd into batches until the end, an error, or stop.
func readBatches(rd *Reader, opts StageOptions, out chan<- stagedBatch, stop <-chan struct{}) {
	defer close(out)
	send := func(b stagedBatch) bool {
		select {
		case out <- b:
			return true
		case <-stop:
			return false
		}
	}
	size := min(opts.BatchRecords, int(min(rd.Header().Count(), 1<<16)))
	batch := make([]fold.Mutation, 0, size)
	bytes := 0
	for rd.Next() {
		e := rd.Entry()
		m := fold.Mutation{Op: fold.MutPut, Key: e.Key, Value: e.Value, Revision: e.Revision}
		if !e.Live {
			m.Op = fold.MutDelete
		}
		batch = append(batch, m)
		bytes += len(e.Key) + len(e.Value)
		if len(batch) >= opts.BatchRecords || bytes >= opts.BatchBytes {
			if !send(stagedBatch{muts: batch}) {
				return
			}
			batch, bytes = make([]fold.Mutation, 0, size), 0
		}
	}
	if err := rd.Err(); err != nil {
		send(stagedBatch{err: err})
		return
	}
	send(stagedBatch{muts: batch, final: true})
}

// Discard stops the Resume, closes the staged store and removes the staging directory.
func (s *Staged) Discard() error {
	s.stopResume()
	cerr := s.Store.Close()
	if errors.Is(cerr, fold.ErrClosed) {
		cerr = nil
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove staging directory: %w", err)
	}
	if cerr != nil && !errors.Is(cerr, fold.ErrClosed) {
		return fmt.Errorf("close staging store: %w", cerr)
	}
	return nil
}

// relocator is a store that can follow its directory being renamed while it is open, so
// Commit need not close it and open it again, which would replay the memory store's whole
// log and start a pebble store with cold caches (the first Gets and the read of what
// each update of the tail replaces would go to disk again). Relocate runs move (the swap)
// while the store holds off its own use of the directory.
type relocator interface {
	Relocate(dir string, move func() error) error
}

// swapHook replaces swapDirs in tests that need the swap itself to fail.
var swapHook = swapDirs

// Commit makes the staged store the fold in finalDir and returns it, open. The caller must
// have closed any store open in finalDir. The swap is one rename (Linux: an atomic
// exchange with the old directory): a crash leaves either the old fold or the new one in
// finalDir, never a mix. The old fold is removed only once the new one opened; on any
// error the old fold is back in finalDir (nothing is left open) and the staging directory
// is removed, so the caller can reopen finalDir as it was. finalDir must be on the staging
// directory's file system (a sibling, such as finalDir+".staging").
func (s *Staged) Commit(finalDir string) (fold.Store, error) {
	st, err := s.commit(finalDir)
	if err != nil {
		s.stopResume()
		return nil, fmt.Errorf("commit staged export: %w", err)
	}
	return st, nil
}

// stopResume stops and forgets the Resume: the staged fold did not become the fold.
func (s *Staged) stopResume() {
	s.Resume.Stop()
	s.Resume = nil
}

// Replace closes old (the store open in finalDir; nil when none is) and commits the staged
// export in its place (see Commit). It returns the store to go on with: the new fold; or,
// with an error, old itself when it was not closed, else the old fold reopened (nil only
// when even that failed, or old was nil). A caller such as a fold loop's Reseeder is thus
// never left holding a closed store after a failed swap.
func (s *Staged) Replace(old fold.Store, finalDir string) (fold.Store, error) {
	st, err := s.replace(old, finalDir)
	if err != nil {
		s.stopResume()
	}
	return st, err
}

func (s *Staged) replace(old fold.Store, finalDir string) (fold.Store, error) {
	if old != nil {
		if err := old.Close(); err != nil && !errors.Is(err, fold.ErrClosed) {
			err = fmt.Errorf("replace fold: close the old fold: %w", errors.Join(err, s.Discard()))
			return s.reopen(finalDir, err)
		}
	}
	st, err := s.commit(finalDir)
	if err != nil {
		err = fmt.Errorf("replace fold: %w", err)
		if old == nil {
			return nil, err
		}
		return s.reopen(finalDir, err)
	}
	return st, nil
}

// reopen opens the fold in dir after a failed replace, returning it with cause.
func (s *Staged) reopen(dir string, cause error) (fold.Store, error) {
	st, err := s.open(dir)
	if err != nil {
		return nil, errors.Join(cause, fmt.Errorf("reopen the old fold: %w", err))
	}
	return st, fmt.Errorf("%w (the old fold was reopened)", cause)
}

func (s *Staged) commit(finalDir string) (fold.Store, error) {
	var sw *swap
	swapDirs := func() error {
		var err error
		sw, err = swapHook(s.dir, finalDir)
		return err
	}
	var st fold.Store
	if rel, ok := s.Store.(relocator); ok {
		if err := rel.Relocate(finalDir, swapDirs); err != nil {
			return nil, errors.Join(err, s.Discard()) // nothing moved
		}
		st = s.Store
	} else {
		if err := s.Store.Close(); err != nil {
			return nil, errors.Join(fmt.Errorf("close staging store: %w", err), s.Discard())
		}
		if err := swapDirs(); err != nil {
			return nil, errors.Join(err, s.Discard())
		}
		var err error
		if st, err = s.open(finalDir); err != nil {
			// The new fold does not open: put the old one back.
			err = fmt.Errorf("open the new fold: %w", err)
			if uerr := sw.undo(); uerr != nil {
				return nil, errors.Join(err, uerr)
			}
			return nil, errors.Join(err, s.Discard())
		}
	}
	// The new fold is in place and open. What finish may fail at is removing the replaced
	// fold (the next Stage clears the directory) or syncing the rename (a crash would bring
	// back the old fold, consistent too): a warning, not a reason to lose the seed.
	s.Warning = sw.finish()
	return st, nil
}

// Import stages the export read from src in stagingDir, verifies it and swaps it into
// finalDir (see Stage and Commit). Any store open in finalDir must be closed first.
func Import(ctx context.Context, src io.Reader, stagingDir, finalDir string, opts StageOptions) (fold.Store, Summary, error) {
	staged, err := Stage(ctx, src, stagingDir, opts)
	if err != nil {
		return nil, Summary{}, err
	}
	st, err := staged.Commit(finalDir)
	if err != nil {
		return nil, Summary{}, err
	}
	return st, staged.Summary, nil
}

// StagingDir is the conventional staging directory for a fold in dir: a sibling, so the
// swap is a rename within one file system.
func StagingDir(dir string) string { return filepath.Clean(dir) + ".staging" }

// syncDir fsyncs a directory so renames in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
