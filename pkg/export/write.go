package export

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"runtime"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Meta is what Write records about the fold besides its contents.
type Meta struct {
	// Bucket is the NATS KV bucket the fold mirrors (required).
	Bucket string
	// Scope is the fold's scope; every key of the snapshot must be within it.
	Scope kv.Scope
	// Backend names the source store ("pebble", "memory"); informative.
	Backend string
	// Created is recorded in the header; zero means now.
	Created time.Time
}

// Write streams snap to w as an export and returns its summary. It reads the snapshot
// once, in key order, holding a few frames (about 256 KiB each, or one record when larger)
// in memory: a fold is never materialized. A snapshot that can be read in key ranges (a
// pebble snapshot: splitRanger) is read and encoded by a few goroutines at once, each
// holding at most chunkFrames frames ahead of the writer; others in one pass, without
// copying each entry when they can range by borrowing (borrowingRanger).
//
// The snapshot must be at a consistent applied cursor: State().Cursor > 0 and not
// Resyncing, else ErrNotExportable. A key outside meta.Scope, or a snapshot whose contents
// disagree with its Stats, is ErrNotExportable as well. On any error the trailer is not
// written, so what reached w can never verify as an export; the caller must still discard
// it (the transport aborts the upload).
func Write(w io.Writer, snap fold.Reader, meta Meta) (Summary, error) {
	return writeTo(w, nil, snap, meta)
}

// writeTo is Write; wb, when not nil, is the local file behind w, made durable as it is
// written and synced before writeTo returns (its background fsync has stopped, whatever
// the outcome).
func writeTo(w io.Writer, wb *storekit.WriteBehind, snap fold.Reader, meta Meta) (Summary, error) {
	pool := newBufPool(2*maxExportWorkers*chunkFrames + 8)
	pw := newPipeWriter(w, pool, wb, 3)
	sum, err := write(pw, pool, snap, meta)
	if cerr := pw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write export: %w", cerr)
	}
	if wb != nil {
		if err == nil {
			err = wb.Sync()
		} else if serr := wb.Stop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	if err != nil {
		return Summary{}, err
	}
	return sum, nil
}

func write(pw *pipeWriter, pool bufPool, snap fold.Reader, meta Meta) (Summary, error) {
	st := snap.State()
	switch {
	case meta.Bucket == "":
		return Summary{}, fmt.Errorf("write export: %w: no bucket name", ErrNotExportable)
	case st.Resyncing:
		return Summary{}, fmt.Errorf("write export: %w: a resync is in progress", ErrNotExportable)
	case st.Cursor == 0:
		return Summary{}, fmt.Errorf("write export: %w: the fold has applied nothing (cursor 0)", ErrNotExportable)
	}
	if err := meta.Scope.Validate(); err != nil {
		return Summary{}, fmt.Errorf("write export: %w: %w", ErrNotExportable, err)
	}
	stats, err := snap.Stats()
	if err != nil {
		return Summary{}, fmt.Errorf("write export: fold stats: %w", err)
	}
	if meta.Created.IsZero() {
		meta.Created = time.Now()
	}
	h := Header{
		Version:    FormatVersion,
		Bucket:     meta.Bucket,
		Scope:      meta.Scope,
		Cursor:     st.Cursor,
		Created:    meta.Created.UTC(),
		Live:       stats.Live,
		Tombstones: stats.Tombstones,
		Backend:    meta.Backend,
	}
	fw := &frameWriter{pool: pool, buf: append(pool.get(), make([]byte, frameHeaderLen)...)}
	fw.emit = func(b []byte) error { return fw.raw(pw, b) }
	if err := fw.raw(pw, encodePreamble(FormatVersion)); err != nil {
		return Summary{}, err
	}
	fw.buf = encodeHeader(fw.buf, h)
	if err := fw.flush(frameHeader); err != nil {
		return Summary{}, err
	}
	chk := recordCheck{scope: meta.Scope, cursor: st.Cursor}
	if err := writeRecords(fw, pw, snap, &chk); err != nil {
		return Summary{}, err
	}
	live, tombs := chk.live, chk.tombs
	if live != h.Live || tombs != h.Tombstones {
		return Summary{}, fmt.Errorf("write export: %w: snapshot holds %d live and %d tombstones, its stats say %d and %d",
			ErrNotExportable, live, tombs, h.Live, h.Tombstones)
	}
	if err := fw.flush(frameRecords); err != nil {
		return Summary{}, err
	}
	body, sum := fw.n, fw.crc
	fw.buf = binary.LittleEndian.AppendUint64(fw.buf, live+tombs)
	fw.buf = binary.LittleEndian.AppendUint64(fw.buf, uint64(body))
	fw.buf = binary.LittleEndian.AppendUint64(fw.buf, 0)
	fw.buf = binary.LittleEndian.AppendUint32(fw.buf, sum)
	if err := fw.flush(frameTrailer); err != nil {
		return Summary{}, err
	}
	return Summary{Header: h, Bytes: fw.n, Checksum: sum}, nil
}

// writeRecords writes the snapshot's records, in parallel key ranges when it can split
// them, else in one sequential pass.
func writeRecords(fw *frameWriter, pw *pipeWriter, snap fold.Reader, chk *recordCheck) error {
	if sr, ok := snap.(splitRanger); ok {
		workers := min(max(runtime.GOMAXPROCS(0), 2), maxExportWorkers)
		if keys, err := sr.SplitKeys(workers * 8); err == nil && len(keys) > 0 {
			return writeParallel(fw, pw, sr, keys, chk, workers)
		}
	}
	entries := snap.Range
	if br, ok := snap.(borrowingRanger); ok {
		entries = br.RangeBorrowed
	}
	return encodeRange(fw, entries("", true), chk)
}

// encodeRange checks and encodes entries into fw's frames (the last one left in fw.buf).
func encodeRange(fw *frameWriter, entries iter.Seq2[fold.Entry, error], chk *recordCheck) error {
	for e, err := range entries {
		if err != nil {
			return fmt.Errorf("write export: read fold: %w", err)
		}
		if err := chk.check(e); err != nil {
			return err
		}
		if err := fw.record(e); err != nil {
			return err
		}
	}
	return nil
}

// recordCheck validates the records of a snapshot, or of one key range of it, and counts
// them.
type recordCheck struct {
	scope       kv.Scope
	cursor      uint64
	first, last []byte // nil until a record was seen
	seen        bool
	live, tombs uint64
}

func (c *recordCheck) check(e fold.Entry) error {
	if c.seen && e.Key <= string(c.last) {
		return fmt.Errorf("write export: %w: fold range out of order at key %q", ErrNotExportable, e.Key)
	}
	if e.Key == "" || !c.scope.Contains(e.Key) {
		return fmt.Errorf("write export: %w: key %q is outside scope %q", ErrNotExportable, e.Key, c.scope)
	}
	if e.Revision == 0 || e.Revision > c.cursor {
		return fmt.Errorf("write export: %w: key %q at revision %d beyond the cursor %d", ErrNotExportable, e.Key, e.Revision, c.cursor)
	}
	if !c.seen {
		c.first = []byte(e.Key)
	}
	c.seen, c.last = true, append(c.last[:0], e.Key...)
	if e.Live {
		c.live++
	} else {
		c.tombs++
	}
	return nil
}

// borrowingRanger is a fold.Reader that can range without copying each entry (pebble):
// Key and Value are valid only until the loop body returns, which suits Write, since it
// copies each record into its frame at once.
type borrowingRanger interface {
	RangeBorrowed(prefix string, tombstones bool) iter.Seq2[fold.Entry, error]
}

// frameWriter assembles frames in buf (whose first frameHeaderLen bytes are reserved for
// the frame header) and hands each finished frame to emit, which takes ownership of it;
// buf then starts over in a buffer from pool. The writer of the export's stream emits
// through raw, which keeps the running body checksum.
type frameWriter struct {
	emit func(b []byte) error
	pool bufPool
	buf  []byte
	crc  uint32
	n    int64
}

// raw checksums b into the body and hands it to pw, which takes ownership of it.
func (f *frameWriter) raw(pw *pipeWriter, b []byte) error {
	f.crc = crc32.Update(f.crc, castagnoli, b)
	f.n += int64(len(b))
	if err := pw.send(b); err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	return nil
}

// record appends one record, closing the frame first when the record would overflow it.
func (f *frameWriter) record(e fold.Entry) error {
	val := e.Value
	op := recLive
	if !e.Live {
		op, val = recTombstone, nil
	}
	body := 1 + uvarintLen(uint64(len(e.Key))) + len(e.Key) + uvarintLen(e.Revision) + len(val)
	size := uvarintLen(uint64(body)) + body
	if size > maxFramePayload {
		return fmt.Errorf("write export: %w: record of key %q is %d bytes (max %d)", ErrNotExportable, e.Key, size, maxFramePayload)
	}
	if len(f.buf) > frameHeaderLen && len(f.buf)-frameHeaderLen+size > targetFramePayload {
		if err := f.flush(frameRecords); err != nil {
			return err
		}
	}
	b := binary.AppendUvarint(f.buf, uint64(body))
	b = append(b, op)
	b = binary.AppendUvarint(b, uint64(len(e.Key)))
	b = append(b, e.Key...)
	b = binary.AppendUvarint(b, e.Revision)
	f.buf = append(b, val...)
	return nil
}

// flush writes the frame in buf (skipped for an empty records frame) and resets buf.
func (f *frameWriter) flush(typ byte) error {
	payload := len(f.buf) - frameHeaderLen
	if typ == frameRecords && payload == 0 {
		return nil
	}
	f.buf[0] = typ
	binary.LittleEndian.PutUint32(f.buf[1:5], uint32(payload))
	binary.LittleEndian.PutUint32(f.buf[5:9], crc32.Checksum(f.buf[:5], castagnoli))
	f.buf = binary.LittleEndian.AppendUint32(f.buf, crc32.Checksum(f.buf[frameHeaderLen:], castagnoli))
	err := f.emit(f.buf)
	f.buf = append(f.pool.get(), make([]byte, frameHeaderLen)...)
	return err
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
