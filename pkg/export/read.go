package export

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"unsafe"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// Reader reads an export record by record. Records are yielded before the trailer has
// been checked: treat them as untrusted until Next has returned false with Err() == nil
// (stage them, never serve them). The iteration pattern:
//
//	rd, err := export.Open(r, export.ExpectFold(bucket, scope))
//	for rd.Next() { use(rd.Entry()) }
//	if err := rd.Err(); err != nil { discard everything }
type Reader struct {
	r     *bufio.Reader
	hdr   Header
	crc   uint32 // running CRC-32C of the body read so far
	n     int64  // bytes read
	frame []byte // current records frame payload
	pos   int    // next record in frame

	entry   fold.Entry
	count   uint64
	live    uint64
	lastKey []byte
	sum     Summary
	err     error
	done    bool
	// borrow: Entry's Key and Value alias the frame buffer (valid until the next Next)
	// instead of being copied; see borrowed.
	borrow bool
	// pre, when set, delivers frames read (and checksummed) ahead by a goroutine.
	pre *prefetcher
}

// prefetcher reads frames in a goroutine, so that reading and checksumming the export
// overlap decoding its records and whatever consumes them (a bulk load).
type prefetcher struct {
	frames chan prefetched
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}
	held   []byte // the frame the reader is on; recycled when it moves on
}

type prefetched struct {
	typ byte
	p   []byte
	err error
}

// prefetchFrames starts reading frames ahead. Call stopPrefetch (always) before the
// source is released: the goroutine reads it until the trailer, an error, or the stop.
func (rd *Reader) prefetchFrames() {
	pf := &prefetcher{frames: make(chan prefetched, 2), free: make(chan []byte, 4), stop: make(chan struct{}), done: make(chan struct{})}
	rd.pre = pf
	go func() {
		defer close(pf.done)
		for {
			var buf []byte
			select {
			case buf = <-pf.free:
			default:
			}
			typ, p, err := rd.readFrame(buf)
			select {
			case pf.frames <- prefetched{typ, p, err}:
			case <-pf.stop:
				return
			}
			if err != nil || typ == frameTrailer {
				return
			}
		}
	}()
}

// stopPrefetch stops the prefetching goroutine and waits for it; frames are read inline
// again afterwards.
func (rd *Reader) stopPrefetch() {
	if rd.pre == nil {
		return
	}
	close(rd.pre.stop)
	<-rd.pre.done
	rd.pre = nil
}

// nextFrame returns the next frame, read inline or by the prefetcher.
func (rd *Reader) nextFrame() (byte, []byte, error) {
	pf := rd.pre
	if pf == nil {
		return rd.readFrame(rd.frame)
	}
	if pf.held != nil {
		select {
		case pf.free <- pf.held[:0]:
		default:
		}
		pf.held = nil
	}
	f := <-pf.frames
	pf.held = f.p
	return f.typ, f.p, f.err
}

// Open reads and checks the preamble and the header of an export. Errors: ErrForeign (not
// an export, or another bucket/scope than exp), ErrUnsupportedVersion, ErrTruncated,
// ErrChecksum, ErrMalformed (all match ErrInvalidExport), or a wrapped read error.
func Open(r io.Reader, exp Expect) (*Reader, error) {
	rd := &Reader{r: bufio.NewReaderSize(r, 64<<10)}
	if err := rd.open(exp); err != nil {
		return nil, fmt.Errorf("read export: %w", err)
	}
	return rd, nil
}

func (rd *Reader) open(exp Expect) error {
	var pre [preambleLen]byte
	n, err := io.ReadFull(rd.r, pre[:])
	if !bytes.Equal(pre[:min(n, len(magic))], magic[:min(n, len(magic))]) {
		return fmt.Errorf("%w: not a slipstream export (bad magic)", ErrForeign)
	}
	if err != nil {
		return readErr(err, "preamble")
	}
	rd.consume(pre[:])
	version := binary.LittleEndian.Uint16(pre[8:10])
	if crc32.Checksum(pre[:10], castagnoli) != binary.LittleEndian.Uint32(pre[10:14]) {
		return fmt.Errorf("%w: preamble", ErrChecksum)
	}
	if version == 0 || version > FormatVersion {
		return fmt.Errorf("%w: export format version %d, this build reads up to %d", ErrUnsupportedVersion, version, FormatVersion)
	}
	typ, p, err := rd.readFrame(nil)
	if err != nil {
		return err
	}
	if typ != frameHeader {
		return fmt.Errorf("%w: first frame is %q, want the header", ErrMalformed, typ)
	}
	if rd.hdr, err = decodeHeader(p, version); err != nil {
		return err
	}
	return exp.check(rd.hdr)
}

// readErr maps a short read to ErrTruncated.
func readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: export ends inside the %s", ErrTruncated, what)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

func (rd *Reader) consume(b []byte) {
	rd.crc = crc32.Update(rd.crc, castagnoli, b)
	rd.n += int64(len(b))
}

// readFrame reads one frame into buf (reusing it when large enough) and returns its type
// and payload, both checksummed.
func (rd *Reader) readFrame(buf []byte) (byte, []byte, error) {
	var fh [frameHeaderLen]byte
	if _, err := io.ReadFull(rd.r, fh[:]); err != nil {
		return 0, nil, readErr(err, "frame header")
	}
	if crc32.Checksum(fh[:5], castagnoli) != binary.LittleEndian.Uint32(fh[5:9]) {
		return 0, nil, fmt.Errorf("%w: frame header at offset %d", ErrChecksum, rd.n)
	}
	typ, size := fh[0], binary.LittleEndian.Uint32(fh[1:5])
	if typ != frameHeader && typ != frameRecords && typ != frameTrailer {
		return 0, nil, fmt.Errorf("%w: unknown frame type %q at offset %d", ErrMalformed, typ, rd.n)
	}
	if size > maxFramePayload {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes at offset %d (max %d)", ErrMalformed, size, rd.n, maxFramePayload)
	}
	p, err := readN(rd.r, buf[:0], int(size)+frameCRCLen)
	if err != nil {
		return 0, nil, readErr(err, "frame")
	}
	payload := p[:size]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(p[size:]) {
		return 0, nil, fmt.Errorf("%w: frame payload at offset %d", ErrChecksum, rd.n)
	}
	if typ != frameTrailer {
		rd.consume(fh[:])
		rd.consume(p)
	}
	return typ, payload, nil
}

// readN appends exactly n bytes from r to buf, growing it as data arrives so a damaged or
// hostile length cannot force a large allocation ahead of the data.
func readN(r io.Reader, buf []byte, n int) ([]byte, error) {
	const step = 1 << 20
	for len(buf) < n {
		want := min(n-len(buf), step)
		if cap(buf)-len(buf) < want {
			buf = append(buf[:cap(buf)], make([]byte, want)...)[:len(buf)]
		}
		k, err := io.ReadFull(r, buf[len(buf):len(buf)+want])
		buf = buf[:len(buf)+k]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// Header returns the export's header (checked, but see Reader on trust).
func (rd *Reader) Header() Header { return rd.hdr }

// Next advances to the next record. It returns false at the end of the records (after the
// trailer was verified: Err() == nil) or on an error (Err() != nil).
func (rd *Reader) Next() bool {
	if rd.err != nil || rd.done {
		return false
	}
	for rd.pos >= len(rd.frame) {
		typ, p, err := rd.nextFrame()
		if err != nil {
			rd.err = fmt.Errorf("read export: %w", err)
			return false
		}
		switch typ {
		case frameRecords:
			rd.frame, rd.pos = p, 0
		case frameTrailer:
			rd.err = rd.finish(p)
			rd.done = rd.err == nil
			return false
		default:
			rd.err = fmt.Errorf("read export: %w: unexpected frame %q among records", ErrMalformed, typ)
			return false
		}
	}
	if err := rd.decodeRecord(); err != nil {
		rd.err = fmt.Errorf("read export: %w", err)
		return false
	}
	return true
}

// decodeRecord parses the record at pos into entry.
func (rd *Reader) decodeRecord() error {
	p := rd.frame[rd.pos:]
	size, n := binary.Uvarint(p)
	if n <= 0 || size > uint64(len(p)-n) {
		return fmt.Errorf("%w: record length at record %d", ErrMalformed, rd.count)
	}
	body := p[n : n+int(size)]
	rd.pos += n + int(size)
	d := decoder{b: body, ok: true}
	if len(body) == 0 {
		return fmt.Errorf("%w: empty record %d", ErrMalformed, rd.count)
	}
	op := body[0]
	d.b = body[1:]
	kb := d.bytes()
	rev := d.uvarint()
	if !d.ok || len(kb) == 0 {
		return fmt.Errorf("%w: record %d does not parse", ErrMalformed, rd.count)
	}
	// The key aliases the frame until it is copied below (or for good in borrow mode).
	key := unsafe.String(unsafe.SliceData(kb), len(kb))
	if rd.count > 0 && key <= string(rd.lastKey) {
		return fmt.Errorf("%w: key %q out of order after %q", ErrMalformed, key, rd.lastKey)
	}
	if !rd.hdr.Scope.Contains(key) {
		return fmt.Errorf("%w: key %q is outside the export's scope %q", ErrMalformed, key, rd.hdr.Scope)
	}
	e := fold.Entry{Key: key, Revision: rev}
	switch op {
	case recLive:
		e.Live = true
		switch {
		case rd.borrow:
			e.Value = d.b[:len(d.b):len(d.b)]
		default:
			e.Value = bytes.Clone(d.b)
			if e.Value == nil {
				e.Value = []byte{}
			}
		}
		rd.live++
	case recTombstone:
		if len(d.b) != 0 {
			return fmt.Errorf("%w: tombstone %q carries a value", ErrMalformed, key)
		}
	default:
		return fmt.Errorf("%w: unknown operation %d in record %d", ErrMalformed, op, rd.count)
	}
	if rev == 0 || rev > rd.hdr.Cursor {
		return fmt.Errorf("%w: key %q at revision %d, export cursor %d", ErrMalformed, key, rev, rd.hdr.Cursor)
	}
	if !rd.borrow {
		e.Key = string(kb)
	}
	rd.count++
	rd.lastKey = append(rd.lastKey[:0], kb...)
	rd.entry = e
	return nil
}

// finish checks the trailer against what was read, then that nothing follows it.
func (rd *Reader) finish(p []byte) error {
	if len(p) != trailerLen {
		return fmt.Errorf("read export: %w: trailer of %d bytes", ErrMalformed, len(p))
	}
	count := binary.LittleEndian.Uint64(p[0:8])
	body := binary.LittleEndian.Uint64(p[8:16])
	sum := binary.LittleEndian.Uint32(p[24:28])
	switch {
	case sum != rd.crc || body != uint64(rd.n):
		return fmt.Errorf("read export: %w: body checksum %08x over %d bytes, trailer says %08x over %d",
			ErrChecksum, rd.crc, rd.n, sum, body)
	case count != rd.count || count != rd.hdr.Count() || rd.live != rd.hdr.Live:
		return fmt.Errorf("read export: %w: %d records (%d live) read, header says %d (%d live), trailer %d",
			ErrChecksum, rd.count, rd.live, rd.hdr.Count(), rd.hdr.Live, count)
	}
	if _, err := rd.r.ReadByte(); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("read export: after trailer: %w", err)
		}
		return fmt.Errorf("read export: %w: data after the trailer", ErrMalformed)
	}
	rd.sum = Summary{Header: rd.hdr, Bytes: rd.n + int64(frameHeaderLen+trailerLen+frameCRCLen), Checksum: sum}
	return nil
}

// Entry returns the record Next moved to. Its Value is not reused by later calls.
func (rd *Reader) Entry() fold.Entry { return rd.entry }

// borrowed yields the remaining records without copying them: each entry's Key and Value
// alias the reader's frame buffer and are valid only until the loop body returns. The
// error of a failed read is yielded last; a loop that sees no error has read a verified
// export (the sequence ends only after the trailer checked out).
func (rd *Reader) borrowed() iter.Seq2[fold.Entry, error] {
	return func(yield func(fold.Entry, error) bool) {
		rd.borrow = true
		defer func() { rd.borrow = false }()
		for rd.Next() {
			if !yield(rd.entry, nil) {
				return
			}
		}
		if rd.err != nil {
			yield(fold.Entry{}, rd.err)
		}
	}
}

// Err returns the error that ended the iteration; nil after the trailer was verified
// (and nil while records remain).
func (rd *Reader) Err() error { return rd.err }

// Verified reports whether the whole export has been read and its trailer verified.
func (rd *Reader) Verified() bool { return rd.done }

// Summary describes the export once Verified.
func (rd *Reader) Summary() Summary { return rd.sum }

// All yields the records; the error of a failed read is yielded last. A loop over it
// that sees no error has read a verified export.
func (rd *Reader) All() iter.Seq2[fold.Entry, error] {
	return func(yield func(fold.Entry, error) bool) {
		for rd.Next() {
			if !yield(rd.Entry(), nil) {
				return
			}
		}
		if rd.err != nil {
			yield(fold.Entry{}, rd.err)
		}
	}
}

// Verify reads a whole export, checking every frame, the trailer and exp.
func Verify(r io.Reader, exp Expect) (Summary, error) {
	rd, err := Open(r, exp)
	if err != nil {
		return Summary{}, err
	}
	for rd.Next() {
	}
	if rd.err != nil {
		return Summary{}, rd.err
	}
	return rd.sum, nil
}
