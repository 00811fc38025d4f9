package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// Apply writes muts, st and the updated counts in one Pebble batch (fsynced with
// SyncEveryApply). Errors: fold.ErrCursorRegression (a lower cursor without st.Resyncing),
// storekit.ErrInvalidMutation, an error wrapping syscall.ENOSPC (less than
// Options.MinFreeBytes free on the store's filesystem), fold.ErrClosed, fold.ErrCorrupted (a replaced entry does not decode), or a wrapped I/O
// error; on any error nothing is applied.
func (s *Store) Apply(muts []fold.Mutation, st fold.State) error {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	if err := storekit.CheckMutations(muts); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkSpace(s.opts.FS, s.dir, s.opts.MinFreeBytes); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	m := *s.meta.Load()
	if st.Cursor < m.st.Cursor && !st.Resyncing {
		return fmt.Errorf("apply: %w: cursor %d is below %d", fold.ErrCursorRegression, st.Cursor, m.st.Cursor)
	}
	// While a resync is in progress its state sync rewrites every key in random order:
	// reading each replaced entry to keep the counts exact would cost a random read per
	// key. Instead the counts are left approximate (each write counted as new) and
	// recounted by one sequential scan in the batch that ends the resync.
	blind := st.Resyncing || m.st.Resyncing
	endResync := m.st.Resyncing && !st.Resyncing
	var b *pebble.Batch
	if endResync {
		b = s.db.NewIndexedBatch()
	} else {
		// Sized up front (a catch-up batch of 10k updates is a few MiB): no growing and
		// copying while it is filled; pooled with its buffer for the next Apply.
		b = s.db.NewBatchWithSize(batchSize(muts), pebble.WithMaxRetainedSizeBytes(maxKeptBatch))
	}
	defer b.Close()
	// The counts need what each mutation replaces: from the store for the first mutation
	// of a key, from this batch for later ones (a blind batch needs neither). The map is
	// the store's, reused: no map growth per batch.
	inBatch := s.inBatch
	defer clear(inBatch)
	var read []fold.Prior // read ahead for a large batch (readPriors)
	if !blind && len(muts) >= parallelPriors {
		var err error
		if read, err = s.readPriors(muts); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	k := s.keyBuf[:0]
	defer func() { s.keyBuf = k[:0] }()
	for i, mu := range muts {
		k = append(append(k[:0], prefixEntry), mu.Key...)
		var p fold.Prior
		if !blind {
			var ok bool
			if p, ok = inBatch[mu.Key]; !ok {
				switch {
				case mu.Prior.Known:
					p = mu.Prior
				case read != nil:
					p = read[i]
				default:
					var err error
					if p, err = s.prior(k); err != nil {
						return fmt.Errorf("apply: %w", err)
					}
				}
			}
		}
		if p.Exists {
			m.c.remove(len(mu.Key), p.ValueLen, p.Live)
		}
		var err error
		switch mu.Op {
		case fold.MutPut:
			err = setEntry(b, k, mu.Revision, true, mu.Value)
			m.c.add(len(mu.Key), len(mu.Value), true)
			p = fold.Prior{Exists: true, Live: true, ValueLen: len(mu.Value)}
		case fold.MutDelete:
			err = setEntry(b, k, mu.Revision, false, nil)
			m.c.add(len(mu.Key), 0, false)
			p = fold.Prior{Exists: true}
		case fold.MutForget:
			err = b.Delete(k, nil)
			p = fold.Prior{}
		}
		if err != nil {
			return wrapErr("apply", err)
		}
		if !blind {
			inBatch[mu.Key] = p
		}
	}
	if endResync {
		c, err := recount(b)
		if err != nil {
			return fmt.Errorf("apply: end of resync: %w", err)
		}
		m.c = c
	}
	m.st = st
	if err := b.Set(keyState, encodeState(st), nil); err != nil {
		return wrapErr("apply", err)
	}
	if err := b.Set(keyCounts, m.c.encode(), nil); err != nil {
		return wrapErr("apply", err)
	}
	wo := pebble.Sync
	if s.opts.Sync == SyncNone {
		wo = pebble.NoSync
	}
	if err := s.db.Apply(b, wo); err != nil {
		return wrapErr("apply", err)
	}
	s.meta.Store(&m)
	return nil
}

// maxKeptBatch bounds the batch buffer Pebble's batch pool keeps for reuse (catch-up
// batches are a few MiB; a batch of huge values is not kept).
const maxKeptBatch = 8 << 20

// batchSize is an upper bound of the encoded size of a batch of muts plus the state and
// counts records: per record a kind byte and two varint lengths.
func batchSize(muts []fold.Mutation) int {
	const record = 1 + 2*binary.MaxVarintLen32
	n := 12 + 2*record + len(keyState) + 9 + len(keyCounts) + 24 // header, state, counts
	for i := range muts {
		n += record + 1 + len(muts[i].Key) + valueHeader + len(muts[i].Value)
	}
	return n
}

// setEntry adds an entry to the batch, encoding it in place (see encodeValue).
func setEntry(b *pebble.Batch, k []byte, rev uint64, live bool, value []byte) error {
	op := b.SetDeferred(len(k), valueHeader+len(value))
	copy(op.Key, k)
	binary.BigEndian.PutUint64(op.Value, rev)
	op.Value[8] = 0
	if live {
		op.Value[8] = flagLive
	}
	copy(op.Value[valueHeader:], value)
	return op.Finish()
}

// recount counts the entries the store will hold once the indexed batch b is applied.
func recount(b *pebble.Batch) (counts, error) {
	it, err := b.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEntry}, UpperBound: []byte{prefixEntry + 1}})
	if err != nil {
		return counts{}, wrapErr("recount", err)
	}
	defer it.Close()
	var c counts
	for ok := it.First(); ok; ok = it.Next() {
		raw, err := it.ValueAndErr()
		if err != nil {
			return counts{}, wrapErr("recount", err)
		}
		k := it.Key()
		if err := checkValue(k[1:], raw); err != nil {
			return counts{}, err
		}
		live := raw[8]&flagLive != 0
		c.add(len(k)-1, len(raw)-valueHeader, live)
	}
	return c, wrapErrNil("recount", it.Error())
}

// prior is what a key holds before a mutation.
// Apply reads what the mutations of a batch of at least parallelPriors replace with
// priorWorkers goroutines before it builds the batch: a catch-up batch or a seeded fold's
// tail replaces thousands of entries, and a read that misses the block cache spends most
// of its time loading and decompressing a block, which cores do side by side.
var parallelPriors = 256 // a variable for BenchmarkApplyReplacing's baseline

const priorWorkers = 4

// readPriors returns, for each mutation whose Prior is not Known, the entry stored for its key
// (s.priors, reused; a key repeated in the batch is read each time, and Apply uses the
// first). Called with s.mu held, so nothing writes meanwhile.
func (s *Store) readPriors(muts []fold.Mutation) ([]fold.Prior, error) {
	read := slices.Grow(s.priors[:0], len(muts))[:len(muts)]
	s.priors = read
	var next atomic.Int64
	errs := make([]error, priorWorkers)
	var wg sync.WaitGroup
	for w := range priorWorkers {
		wg.Go(func() {
			var k []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= len(muts) {
					return
				}
				if muts[i].Prior.Known {
					read[i] = muts[i].Prior
					continue
				}
				k = append(append(k[:0], prefixEntry), muts[i].Key...)
				p, err := s.prior(k)
				if err != nil {
					errs[w] = err
					next.Store(int64(len(muts))) // stop the others
					return
				}
				read[i] = p
			}
		})
	}
	wg.Wait()
	return read, errors.Join(errs...)
}

// prior reads the stored entry for k (with its prefix) without copying the value.
func (s *Store) prior(k []byte) (fold.Prior, error) {
	raw, c, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return fold.Absent, nil
	}
	if err != nil {
		return fold.Prior{}, wrapErr("read replaced entry", err)
	}
	defer c.Close()
	if err := checkValue(k[1:], raw); err != nil {
		return fold.Prior{}, err
	}
	return fold.Prior{Known: true, Exists: true, Live: raw[8]&flagLive != 0, ValueLen: len(raw) - valueHeader}, nil
}
