package export

import (
	"errors"
	"fmt"
	"iter"
	"sync"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// maxExportWorkers bounds the key ranges Write reads at once.
const maxExportWorkers = 4

// chunkFrames is how many finished frames a range's reader may queue ahead of the writer:
// memory stays bounded at about workers x chunkFrames x 256 KiB.
const chunkFrames = 4

// splitRanger is a snapshot whose key ranges can be read independently (pebble): reading
// and encoding, most of an export's CPU time, then run on several cores.
type splitRanger interface {
	fold.Reader
	// SplitKeys suggests up to n-1 increasing keys cutting the entries into similar ranges.
	SplitKeys(n int) ([]string, error)
	// RangeBorrowedBetween yields the entries with lo <= key < hi (hi "": no bound), tombstones
	// too, in key order; Key and Value are valid until the loop body returns.
	RangeBorrowedBetween(lo, hi string, tombstones bool) iter.Seq2[fold.Entry, error]
}

var errWriteStopped = errors.New("export writer stopped")

// sendFrame hands a range's finished frame (ownership included) to the writer.
func sendFrame(out chan<- []byte, stop <-chan struct{}) func([]byte) error {
	return func(b []byte) error {
		select {
		case out <- b:
			return nil
		case <-stop:
			return errWriteStopped
		}
	}
}

// rangeResult is what a range's reader leaves for the writer once its frames are out.
type rangeResult struct {
	chk recordCheck
	err error
}

// writeParallel writes the records of the ranges cut by keys: up to workers ranges are read
// and encoded at once, each into frames of its own (a record never spans frames, so a
// range may end one early), and fw writes them strictly in range order, so the stream and
// its body checksum are as a sequential pass would make them, frame boundaries aside. The
// records' order, scope and revisions are checked per range, and across ranges at their
// boundaries. Every reader has stopped when it returns.
func writeParallel(fw *frameWriter, pw *pipeWriter, sr splitRanger, keys []string, chk *recordCheck, workers int) error {
	n := len(keys) + 1
	outs := make([]chan []byte, n)
	results := make([]rangeResult, n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		wg.Wait()
	}()
	start := func(i int) {
		outs[i] = make(chan []byte, chunkFrames)
		lo, hi := "", ""
		if i > 0 {
			lo = keys[i-1]
		}
		if i < len(keys) {
			hi = keys[i]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(outs[i])
			r := &results[i]
			r.chk = recordCheck{scope: chk.scope, cursor: chk.cursor}
			rw := &frameWriter{emit: sendFrame(outs[i], stop), pool: fw.pool, buf: append(fw.pool.get(), make([]byte, frameHeaderLen)...)}
			if r.err = encodeRange(rw, sr.RangeBorrowedBetween(lo, hi, true), &r.chk); r.err == nil {
				r.err = rw.flush(frameRecords)
			}
		}()
	}
	for i := range min(workers, n) {
		start(i)
	}
	for i := range n {
		for b := range outs[i] {
			if err := fw.raw(pw, b); err != nil {
				return err
			}
		}
		r := &results[i]
		if r.err != nil {
			return r.err
		}
		if r.chk.seen {
			if chk.seen && string(r.chk.first) <= string(chk.last) {
				return fmt.Errorf("write export: %w: fold range out of order at key %q", ErrNotExportable, r.chk.first)
			}
			if !chk.seen {
				chk.first = r.chk.first
			}
			chk.seen, chk.last = true, r.chk.last
			chk.live += r.chk.live
			chk.tombs += r.chk.tombs
		}
		if i+workers < n {
			start(i + workers)
		}
	}
	return nil
}
