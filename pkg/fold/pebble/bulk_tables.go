package pebble

import (
	"encoding/binary"
	"fmt"
	"iter"
	"path/filepath"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// bulkTableRawBytes is how many bytes of keys and values BulkLoad puts in one data table
// (less on disk: compressed). Tables are written by bulkTableWriters goroutines in turns,
// so a load of more than one table encodes and compresses on several cores while the
// caller's sequence is read on another. A variable for tests.
var bulkTableRawBytes = 64 << 20

const (
	bulkTableWriters = 2
	// bulkBatchBytes is how much of a table is handed to its writer at once.
	bulkBatchBytes = 1 << 20
)

// bulkBatch holds consecutive entries of one table, as the keys and values to Set, back
// to back in data (ends[2i] ends key i, ends[2i+1] its value).
type bulkBatch struct {
	table int
	last  bool // the table's final batch: its writer closes (and fsyncs) the table
	data  []byte
	ends  []int
}

// tableWriter writes the tables handed to it, one after the other.
type tableWriter struct {
	in   chan *bulkBatch
	err  error // set by the goroutine; read after done
	done chan struct{}
}

// writeEntries writes the sequence into data tables and counts it. On error every table
// writer has stopped (its files are left for the scratch directory removal).
func (b *bulkWriter) writeEntries(entries iter.Seq2[fold.Entry, error]) (c counts, err error) {
	var failed atomic.Bool
	free := make(chan *bulkBatch, 4*bulkTableWriters+2)
	var tws [bulkTableWriters]*tableWriter
	for i := range tws {
		tws[i] = &tableWriter{in: make(chan *bulkBatch, 4), done: make(chan struct{})}
		go b.runTables(tws[i], free, &failed)
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		var first error
		for _, tw := range tws {
			close(tw.in)
			<-tw.done
			if first == nil {
				first = tw.err
			}
		}
		return first
	}
	defer func() { _ = stop() }()

	var cur *bulkBatch
	table, tableBytes := 0, 0
	send := func() {
		tws[cur.table%bulkTableWriters].in <- cur
		cur = nil
	}
	var last []byte
	n := 0
	for e, err := range entries {
		if err != nil {
			return counts{}, err
		}
		if err := storekit.CheckBulkEntry(e, last, n); err != nil {
			return counts{}, fmt.Errorf("bulk load: %w", err)
		}
		if failed.Load() {
			return counts{}, stop()
		}
		if cur == nil {
			select {
			case cur = <-free:
				cur.data, cur.ends, cur.last = cur.data[:0], cur.ends[:0], false
			default:
				cur = &bulkBatch{data: make([]byte, 0, bulkBatchBytes+64<<10)}
			}
			cur.table = table
			if tableBytes == 0 {
				b.paths = append(b.paths, b.tablePath(table))
			}
		}
		start := len(cur.data)
		cur.data = append(append(cur.data, prefixEntry), e.Key...)
		cur.ends = append(cur.ends, len(cur.data))
		cur.data = binary.BigEndian.AppendUint64(cur.data, e.Revision)
		if e.Live {
			cur.data = append(append(cur.data, flagLive), e.Value...)
		} else {
			cur.data = append(cur.data, 0)
		}
		cur.ends = append(cur.ends, len(cur.data))
		tableBytes += len(cur.data) - start
		c.add(len(e.Key), len(e.Value), e.Live)
		last = append(last[:0], e.Key...)
		n++
		switch {
		case tableBytes >= bulkTableRawBytes:
			cur.last = true
			send()
			table, tableBytes = table+1, 0
		case len(cur.data) >= bulkBatchBytes:
			send()
		}
	}
	if cur != nil {
		cur.last = true
		send()
	}
	if err := stop(); err != nil {
		return counts{}, err
	}
	return c, nil
}

func (b *bulkWriter) tablePath(i int) string {
	return filepath.Join(b.dir, fmt.Sprintf("bulk-%06d.sst", i))
}

// runTables writes tw's batches until tw.in closes; after a failure it only recycles them.
func (b *bulkWriter) runTables(tw *tableWriter, free chan<- *bulkBatch, failed *atomic.Bool) {
	defer close(tw.done)
	var w *sstable.Writer
	defer func() {
		if w != nil { // stopped inside a table: the load failed
			_ = w.Close()
		}
	}()
	for bt := range tw.in {
		if tw.err == nil {
			if tw.err = b.writeBatch(&w, bt); tw.err != nil {
				failed.Store(true)
			}
		}
		select {
		case free <- bt:
		default:
		}
	}
}

func (b *bulkWriter) writeBatch(w **sstable.Writer, bt *bulkBatch) error {
	if *w == nil {
		f, err := b.fs.Create(b.tablePath(bt.table), vfs.WriteCategoryUnspecified)
		if err != nil {
			return fmt.Errorf("bulk load: create table: %w", err)
		}
		*w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), b.opts)
	}
	from := 0
	for i := 0; i < len(bt.ends); i += 2 {
		k, v := bt.data[from:bt.ends[i]], bt.data[bt.ends[i]:bt.ends[i+1]]
		from = bt.ends[i+1]
		if err := (*w).Set(k, v); err != nil {
			return wrapErr("bulk load: write entry", err)
		}
	}
	if bt.last {
		tw := *w
		*w = nil
		if err := tw.Close(); err != nil { // Close fsyncs, as Ingest requires
			return wrapErr("bulk load: finish table", err)
		}
	}
	return nil
}
