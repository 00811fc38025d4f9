package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	// BatchRecords and BatchBytes bound one Apply (defaults 65536 records, 32 MiB).
	BatchRecords int
	BatchBytes   int
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
	dir     string
	open    OpenStore
}

// Dir is the staging directory.
func (s *Staged) Dir() string { return s.dir }

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
		stats, err := s.Store.Stats()
		if err != nil {
			return fmt.Errorf("staging store stats: %w", err)
		}
		if stats.Live != h.Live || stats.Tombstones != h.Tombstones {
			return fmt.Errorf("staging store holds %d live and %d tombstones, the export %d and %d",
				stats.Live, stats.Tombstones, h.Live, h.Tombstones)
		}
		if err := s.Store.Flush(); err != nil {
			return fmt.Errorf("flush staging store: %w", err)
		}
		return nil
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

// Discard closes the staged store and removes the staging directory.
func (s *Staged) Discard() error {
	cerr := s.Store.Close()
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove staging directory: %w", err)
	}
	if cerr != nil && !errors.Is(cerr, fold.ErrClosed) {
		return fmt.Errorf("close staging store: %w", cerr)
	}
	return nil
}

// Commit makes the staged store the fold in finalDir and returns it, open. The caller must
// have closed any store open in finalDir. The swap is one rename (Linux: an atomic
// exchange with the old directory, which is then removed): a crash leaves either the old
// fold or the new one in finalDir, never a mix. finalDir must be on the staging
// directory's file system (a sibling, such as finalDir+".staging").
func (s *Staged) Commit(finalDir string) (fold.Store, error) {
	if err := s.Store.Close(); err != nil {
		return nil, fmt.Errorf("commit staged export: close staging store: %w", err)
	}
	if err := swapDirs(s.dir, finalDir); err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("commit staged export: %w", err)
	}
	st, err := s.open(finalDir)
	if err != nil {
		return nil, fmt.Errorf("commit staged export: open fold: %w", err)
	}
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
