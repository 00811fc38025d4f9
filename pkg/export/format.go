package export

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// The byte layout is documented in docs/export-format.md; keep the two in step.

// FormatVersion is the export format version this build writes. Readers accept versions
// up to it and reject newer ones with ErrUnsupportedVersion.
const FormatVersion uint16 = 1

// magic opens every export. PNG-style: a high byte and CR LF / ^Z catch transfers that
// mangle binary data, and the ASCII middle makes the file recognisable in a hex dump.
var magic = [8]byte{0x89, 'S', 'L', 'E', 'X', '\r', '\n', 0x1a}

const (
	preambleLen    = len(magic) + 2 + 4 // magic, version u16, crc32c(magic+version)
	frameHeaderLen = 1 + 4 + 4          // type, payload length u32, crc32c(type+length)
	frameCRCLen    = 4                  // crc32c(payload) after the payload
	trailerLen     = 8 + 8 + 8 + 4      // records u64, body bytes u64, reserved u64, body crc u32

	// maxFramePayload bounds a frame (a record never spans frames, so this bounds a
	// record too): NATS caps a message at 64 MiB, keys are far smaller.
	maxFramePayload = 80 << 20
	// targetFramePayload is where the writer closes a records frame.
	targetFramePayload = 256 << 10
)

// Frame types.
const (
	frameHeader  byte = 'H'
	frameRecords byte = 'R'
	frameTrailer byte = 'T'
)

// Record operations.
const (
	recLive      byte = 1
	recTombstone byte = 2
)

// castagnoli is CRC-32C: hardware-accelerated in hash/crc32 (SSE4.2 / ARMv8 CRC), tens of
// GB/s, so checksumming costs nothing next to the I/O. Exports guard against accidental
// damage (truncation, bit rot, a broken copy); the object store's access control is the
// trust boundary, so a cryptographic hash would buy nothing but a 10x slower import.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header describes an export: the fold it was taken from and the cursor it is at.
type Header struct {
	// Version is the format version the export was written with.
	Version uint16
	// Bucket is the NATS KV bucket the fold mirrors.
	Bucket string
	// Scope is the fold's scope (all keys, or prefixes).
	Scope kv.Scope
	// Cursor is the stream sequence the fold was at: the export holds the bucket's state
	// (within Scope) exactly at Cursor, tombstones included.
	Cursor uint64
	// Created is when the export was written.
	Created time.Time
	// Live and Tombstones count the records.
	Live, Tombstones uint64
	// Backend names the store the export was taken from ("pebble", "memory"); informative
	// only: an export seeds any backend.
	Backend string
}

// Count is the number of records (live keys plus tombstones).
func (h Header) Count() uint64 { return h.Live + h.Tombstones }

// Summary describes a written or fully verified export.
type Summary struct {
	Header Header
	// Bytes is the size of the whole export.
	Bytes int64
	// Checksum is the CRC-32C over the body (everything before the trailer frame).
	Checksum uint32
}

// Expect is what a reader checks the header against; mismatches are ErrForeign.
type Expect struct {
	// Bucket, when not empty, must equal the export's bucket.
	Bucket string
	// Scope, when not nil, must equal the export's scope (same prefixes, any order).
	Scope *kv.Scope
}

// ExpectFold expects an export of bucket with exactly scope.
func ExpectFold(bucket string, scope kv.Scope) Expect { return Expect{Bucket: bucket, Scope: &scope} }

func (e Expect) check(h Header) error {
	if e.Bucket != "" && e.Bucket != h.Bucket {
		return fmt.Errorf("%w: export of bucket %q, want bucket %q", ErrForeign, h.Bucket, e.Bucket)
	}
	if e.Scope != nil && !sameScope(*e.Scope, h.Scope) {
		return fmt.Errorf("%w: export of scope %q, want scope %q", ErrForeign, h.Scope, *e.Scope)
	}
	return nil
}

func sameScope(a, b kv.Scope) bool {
	if len(a.Prefixes) != len(b.Prefixes) {
		return false
	}
	x, y := slices.Clone(a.Prefixes), slices.Clone(b.Prefixes)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// encodePreamble returns magic, version and their checksum.
func encodePreamble(version uint16) []byte {
	b := make([]byte, 0, preambleLen)
	b = append(b, magic[:]...)
	b = binary.LittleEndian.AppendUint16(b, version)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// encodeHeader appends the header frame's payload.
func encodeHeader(b []byte, h Header) []byte {
	b = binary.LittleEndian.AppendUint64(b, h.Cursor)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.Created.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, h.Live)
	b = binary.LittleEndian.AppendUint64(b, h.Tombstones)
	b = appendString(b, h.Bucket)
	b = appendString(b, h.Backend)
	b = binary.AppendUvarint(b, uint64(len(h.Scope.Prefixes)))
	for _, p := range h.Scope.Prefixes {
		b = appendString(b, p)
	}
	return b
}

// decodeHeader parses a header frame's payload (already checksummed).
func decodeHeader(p []byte, version uint16) (Header, error) {
	h := Header{Version: version}
	d := decoder{b: p, ok: true}
	h.Cursor = d.u64()
	h.Created = time.Unix(0, int64(d.u64())).UTC()
	h.Live = d.u64()
	h.Tombstones = d.u64()
	h.Bucket = d.str()
	h.Backend = d.str()
	n := d.uvarint()
	if n > uint64(len(p)) {
		d.fail()
	}
	for i := uint64(0); i < n && d.ok; i++ {
		h.Scope.Prefixes = append(h.Scope.Prefixes, d.str())
	}
	if !d.ok || len(d.b) != 0 {
		return Header{}, fmt.Errorf("%w: header frame does not parse", ErrMalformed)
	}
	if h.Bucket == "" {
		return Header{}, fmt.Errorf("%w: header names no bucket", ErrMalformed)
	}
	if err := h.Scope.Validate(); err != nil {
		return Header{}, fmt.Errorf("%w: header scope: %w", ErrMalformed, err)
	}
	return h, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads little-endian fields; the first failure sticks (ok = false). Start it
// with ok true.
type decoder struct {
	b  []byte
	ok bool
}

func (d *decoder) fail() { d.ok, d.b = false, nil }

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.bytes()) }

// bytes reads a length-prefixed byte string, aliasing the input.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}
