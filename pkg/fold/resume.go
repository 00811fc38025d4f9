package fold

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// maxResumeDelta bounds the key and value bytes of the delta a Resume keeps in memory.
var maxResumeDelta = 64 << 20

// Resume is a verified watch of a store, ready for a Loop to continue from: the watch
// started at the store's cursor, NATS was proven to hold everything the fold needs after
// it (docs/cursor-expiry.md), and the updates delivered meanwhile, through OpSynced, are
// kept unapplied. Seeding verifies a candidate export this way before the export becomes
// the fold; handing the Resume to the loop that folds into it (LoopConfig.Resume,
// Reseeded.Resume) spares fetching and verifying the delta a second time.
//
// A delta larger than 64 MiB is not kept: the Resume then carries only the verdict, and a
// loop given it starts its own watch from the cursor (which verifies again). A Resume is
// used once; Stop releases one that no loop took.
type Resume struct {
	cursor uint64
	delta  []kv.Update // the updates read, ending at or after OpSynced; nil without w
	w      *kv.Watcher // nil when the delta was dropped
	// priors: what the verification's lookups found for the delta's keys (with the delta).
	priors map[string]Prior
}

// VerifyResume starts a verified watch of b within scope from s's cursor and reads it until
// the resume is verified, for at most timeout. The watch keeps running under ctx (the
// loop that takes the Resume stops it). s must not change until the Resume is taken or
// stopped, except by a swap that puts the same state in its place (the verification reads
// it, and the delta is relative to it). A store at cursor 0 needs no verification: its
// Resume has no watch and the loop syncs the bucket.
//
// Errors: kv.ErrCursorExpired when NATS cannot continue from the cursor; the watch's error
// (wrapped kv errors) when it failed; ctx's error or context.DeadlineExceeded when the
// timeout passed first; a wrapped store error when s could not be read.
func VerifyResume(ctx context.Context, b *kv.Bucket, scope kv.Scope, s Store, timeout time.Duration) (*Resume, error) {
	cursor := s.State().Cursor
	if cursor == 0 {
		return &Resume{}, nil
	}
	fs := &recordingState{foldState: foldState{s}, priors: map[string]Prior{}}
	w, err := b.Watch(ctx, scope, kv.WatchOptions{Cursor: cursor, Fold: fs, FoldFrozen: true, Buffer: watchBuffer})
	return readResume(ctx, w, err, cursor, fs, timeout)
}

// PendingResume is VerifyResume started for a store that is still being built at a known
// cursor, such as an export being staged: the watch captures the stream, creates its
// consumer (tens of milliseconds of server work at a million keys), delivers the delta
// (up to pendingBuffer updates) and counts the stream alongside the building, and reads
// the store once Finish hands it over (kv.WatchOptions.FoldReady). Call Finish or Abort
// once.
type PendingResume struct {
	cursor  uint64
	fs      *recordingState
	ready   chan struct{} // closed by Finish once fs reads the store
	started chan struct{} // closed once Watch returned w, err
	w       *kv.Watcher
	err     error
}

// pendingBuffer is the watch buffer of a PendingResume: the delta delivered while the
// store is built waits in it (nobody reads before Finish), so a larger delta pauses the
// watch until Finish and its count waits until the rest is delivered.
const pendingBuffer = 1 << 16

// StartVerifyResume starts VerifyResume for the store that will be at cursor; the watch
// runs under ctx.
func StartVerifyResume(ctx context.Context, b *kv.Bucket, scope kv.Scope, cursor uint64) *PendingResume {
	p := &PendingResume{cursor: cursor, ready: make(chan struct{}), started: make(chan struct{}),
		fs: &recordingState{priors: map[string]Prior{}}}
	if cursor == 0 {
		close(p.started)
		return p
	}
	go func() {
		defer close(p.started)
		p.w, p.err = b.Watch(ctx, scope, kv.WatchOptions{Cursor: cursor, Fold: p.fs, FoldFrozen: true, FoldReady: p.ready, Buffer: pendingBuffer})
	}()
	return p
}

// Finish hands s, which must be at the cursor StartVerifyResume was given, to the watch
// and reads it as VerifyResume does (same errors; a store at another cursor is an error
// and stops the watch).
func (p *PendingResume) Finish(ctx context.Context, s Store, timeout time.Duration) (*Resume, error) {
	if got := s.State().Cursor; got != p.cursor {
		p.Abort()
		return nil, fmt.Errorf("verify resume from cursor %d: %w: the store is at cursor %d", p.cursor, errStaleResume, got)
	}
	if p.cursor == 0 {
		return &Resume{}, nil
	}
	p.fs.r = s // read by the watch only after ready is closed
	close(p.ready)
	<-p.started
	return readResume(ctx, p.w, p.err, p.cursor, p.fs, timeout)
}

// Abort stops the watch of a PendingResume that will not be finished (the store could not
// be built). It waits for the watch's start, which ctx bounds. It is safe on nil.
func (p *PendingResume) Abort() {
	if p == nil {
		return
	}
	<-p.started
	if p.w != nil {
		p.w.Stop()
	}
}

// readResume reads the verified watch w (or Watch's error werr) until OpSynced, for at most
// timeout, and returns the Resume (VerifyResume).
func readResume(ctx context.Context, w *kv.Watcher, werr error, cursor uint64, fs *recordingState, timeout time.Duration) (*Resume, error) {
	op := fmt.Sprintf("verify resume from cursor %d", cursor)
	if werr != nil {
		return nil, fmt.Errorf("%s: %w", op, werr)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := &Resume{cursor: cursor, w: w}
	keep := true // the delta is kept (up to maxResumeDelta)
	size := 0
	var ups []kv.Update
	for ok := true; ok; {
		ups, ok = w.Next(rctx, ups, 1<<30, 0)
		if keep {
			for _, u := range ups {
				size += len(u.Key) + len(u.Value)
			}
			r.delta = append(r.delta, ups...)
			if size > maxResumeDelta {
				// Too large to keep: read on for the verdict; the loop fetches it again.
				keep, r.delta = false, nil
				fs.stop()
			}
		}
		if slices.ContainsFunc(ups, func(u kv.Update) bool { return u.Op == kv.OpSynced }) {
			if !keep {
				w.Stop()
				r.w = nil
			}
			r.priors = fs.stop()
			return r, nil
		}
		if rctx.Err() != nil {
			break
		}
	}
	err := w.Err()
	w.Stop()
	switch {
	case err != nil:
	case rctx.Err() != nil:
		err = rctx.Err()
	default:
		err = kv.ErrWatchInterrupted
	}
	return nil, fmt.Errorf("%s: %w", op, err)
}

// Cursor is the cursor the resume was verified from.
func (r *Resume) Cursor() uint64 { return r.cursor }

// Stop ends the watch of a Resume no loop took. It is safe on nil and after a loop took it.
func (r *Resume) Stop() {
	if r != nil && r.w != nil {
		r.w.Stop()
	}
}

// take hands the watch and its delta to a loop whose store is at st; it returns a nil
// watch (and stops the Resume) when the Resume carries none or was verified for another
// state.
func (r *Resume) take(st State) (*kv.Watcher, []kv.Update, map[string]Prior, error) {
	if r == nil || r.w == nil {
		return nil, nil, nil, nil
	}
	w, delta, priors := r.w, r.delta, r.priors
	r.w, r.delta, r.priors = nil, nil, nil
	if st.Resyncing || st.Cursor != r.cursor {
		w.Stop()
		return nil, nil, nil, fmt.Errorf("%w: resume verified from cursor %d, the store is at %d (resyncing %v)",
			errStaleResume, r.cursor, st.Cursor, st.Resyncing)
	}
	return w, delta, priors, nil
}

// errStaleResume: a Resume was offered for a store at another state (logged, then the loop
// watches from its own cursor).
var errStaleResume = errors.New("stale resume")
