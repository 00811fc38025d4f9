package export

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
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
// once, in key order, holding at most one frame (about 256 KiB, or one record when larger)
// in memory: a fold is never materialized.
//
// The snapshot must be at a consistent applied cursor: State().Cursor > 0 and not
// Resyncing, else ErrNotExportable. A key outside meta.Scope, or a snapshot whose contents
// disagree with its Stats, is ErrNotExportable as well. On any error the trailer is not
// written, so what reached w can never verify as an export; the caller must still discard
// it (the transport aborts the upload).
func Write(w io.Writer, snap fold.Reader, meta Meta) (Summary, error) {
	pw := newPipeWriter(w, 3)
	sum, err := write(pw, snap, meta)
	if cerr := pw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write export: %w", cerr)
	}
	if err != nil {
		return Summary{}, err
	}
	return sum, nil
}

func write(w io.Writer, snap fold.Reader, meta Meta) (Summary, error) {
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
	fw := &frameWriter{w: w, buf: make([]byte, frameHeaderLen, targetFramePayload+64<<10)}
	if err := fw.raw(encodePreamble(FormatVersion)); err != nil {
		return Summary{}, err
	}
	fw.buf = encodeHeader(fw.buf, h)
	if err := fw.flush(frameHeader); err != nil {
		return Summary{}, err
	}
	var live, tombs uint64
	var last string
	first := true
	for e, err := range snap.Range("", true) {
		if err != nil {
			return Summary{}, fmt.Errorf("write export: read fold: %w", err)
		}
		if !first && e.Key <= last {
			return Summary{}, fmt.Errorf("write export: %w: fold range out of order at key %q", ErrNotExportable, e.Key)
		}
		if e.Key == "" || !meta.Scope.Contains(e.Key) {
			return Summary{}, fmt.Errorf("write export: %w: key %q is outside scope %q", ErrNotExportable, e.Key, meta.Scope)
		}
		if e.Revision == 0 || e.Revision > st.Cursor {
			return Summary{}, fmt.Errorf("write export: %w: key %q at revision %d beyond the cursor %d", ErrNotExportable, e.Key, e.Revision, st.Cursor)
		}
		first, last = false, e.Key
		if e.Live {
			live++
		} else {
			tombs++
		}
		if err := fw.record(e); err != nil {
			return Summary{}, err
		}
	}
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

// frameWriter assembles frames in buf (whose first frameHeaderLen bytes are reserved for
// the frame header) and keeps the running body checksum.
type frameWriter struct {
	w   io.Writer
	buf []byte
	crc uint32
	n   int64
}

func (f *frameWriter) raw(b []byte) error {
	if _, err := f.w.Write(b); err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	f.crc = crc32.Update(f.crc, castagnoli, b)
	f.n += int64(len(b))
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
	err := f.raw(f.buf)
	f.buf = f.buf[:frameHeaderLen]
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
