package memory

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// status is the outcome of decoding one record.
type status uint8

const (
	recOK         status = iota
	recIncomplete        // the data ends inside the record
	recBadType           // unknown record type
	recBadLength         // a version or cursor length no valid record has
	recBadCRC            // complete record whose checksum does not match
)

func (s status) String() string {
	return [...]string{"ok", "incomplete record", "unknown record type", "bad length field", "checksum mismatch"}[s]
}

// record is one decoded log record. Its slices point into the source's buffer and are
// valid until the next record is decoded.
type record struct {
	typ    byte
	key    []byte
	value  []byte
	ver    []byte
	cursor []byte
}

// source yields a log's bytes in order.
type source interface {
	// take returns the next n bytes, or ok false when fewer than n remain (then nothing is
	// consumed meaningfully: the record is incomplete). Slices taken for one record stay
	// valid until begin is called again.
	take(n int) (b []byte, ok bool)
	// begin starts a new record.
	begin()
}

// sliceSource reads from memory.
type sliceSource struct {
	data []byte
	off  int
}

func (s *sliceSource) begin() {}

func (s *sliceSource) take(n int) ([]byte, bool) {
	if n > len(s.data)-s.off {
		return nil, false
	}
	b := s.data[s.off : s.off+n : s.off+n]
	s.off += n
	return b, true
}

// readerSource reads a file sequentially; remaining bounds every length so that a damaged
// length field never makes it allocate more than the file holds.
type readerSource struct {
	r         *bufio.Reader
	remaining int64
	buf       []byte
	err       error // a read error other than the end of data
}

func (s *readerSource) begin() { s.buf = s.buf[:0] }

func (s *readerSource) take(n int) ([]byte, bool) {
	if int64(n) > s.remaining {
		return nil, false
	}
	start := len(s.buf)
	s.buf = append(s.buf, make([]byte, n)...)
	b := s.buf[start : start+n : start+n]
	if _, err := io.ReadFull(s.r, b); err != nil {
		s.err = err
		return nil, false
	}
	s.remaining -= int64(n)
	return b, true
}

// decode reads one record. n is its encoded length when the structure could be read
// (recOK, recBadCRC), else 0.
func decode(src source) (rec record, n int, st status) {
	src.begin()
	h, ok := src.take(5)
	if !ok {
		return rec, 0, recIncomplete
	}
	want := binary.LittleEndian.Uint32(h)
	rec.typ = h[4]
	sum := crc32.ChecksumIEEE(h[4:5])
	n = 5
	field := func(lenBytes int) ([]byte, bool) {
		lb, ok := src.take(lenBytes)
		if !ok {
			return nil, false
		}
		sum = crc32.Update(sum, crc32.IEEETable, lb)
		var l int
		switch lenBytes {
		case 1:
			l = int(lb[0])
		case 2:
			l = int(binary.LittleEndian.Uint16(lb))
		case 4:
			l = int(binary.LittleEndian.Uint32(lb))
		}
		if lenBytes == 1 && l > maxVersionLen {
			st = recBadLength
			return nil, false
		}
		b, ok := src.take(l)
		if !ok {
			return nil, false
		}
		sum = crc32.Update(sum, crc32.IEEETable, b)
		n += lenBytes + l
		return b, true
	}
	switch rec.typ {
	case recPut:
		if rec.key, ok = field(2); ok {
			if rec.value, ok = field(4); ok {
				rec.ver, ok = field(1)
			}
		}
	case recDelete:
		if rec.key, ok = field(2); ok {
			rec.ver, ok = field(1)
		}
	case recCursor:
		rec.cursor, ok = field(1)
	default:
		return rec, 0, recBadType
	}
	if !ok {
		if st == recBadLength {
			return rec, 0, st
		}
		return rec, 0, recIncomplete
	}
	if sum != want {
		return rec, n, recBadCRC
	}
	return rec, n, recOK
}

// mutation interprets a checksummed PUT or DELETE record under slipstream's conventions.
func (r *record) mutation() (fold.Mutation, error) {
	m := fold.Mutation{Key: string(r.key)}
	switch {
	case r.typ == recPut && len(r.ver) == revisionLen:
		m.Op, m.Value = fold.MutPut, r.value
	case r.typ == recDelete && len(r.ver) == revisionLen:
		m.Op = fold.MutDelete
	case r.typ == recDelete && len(r.ver) == 0:
		return fold.Mutation{Op: fold.MutForget, Key: m.Key}, nil
	default:
		return m, fmt.Errorf("record type %d with a %d-byte version token", r.typ, len(r.ver))
	}
	m.Revision = binary.BigEndian.Uint64(r.ver)
	return m, nil
}

// state interprets a checksummed CURSOR record.
func (r *record) state() (fold.State, error) {
	switch {
	case len(r.cursor) == cursorLen:
		return fold.State{Cursor: binary.BigEndian.Uint64(r.cursor)}, nil
	case len(r.cursor) == cursorLen+cursorFlagLen && r.cursor[cursorLen]&^flagResyncing == 0:
		return fold.State{
			Cursor:    binary.BigEndian.Uint64(r.cursor),
			Resyncing: r.cursor[cursorLen]&flagResyncing != 0,
		}, nil
	}
	return fold.State{}, fmt.Errorf("cursor record of %d bytes %x", len(r.cursor), r.cursor)
}

// errTorn is internal: the log ends in a torn record.
var errTorn = errors.New("torn tail")

// classifyFailure decides whether a record that failed to decode at the start of tail is a
// torn final write (errTorn: discard tail) or corruption. A torn write leaves the last
// record short, unchecksummed or zero-filled, with nothing valid after it. Anything that
// could hide valid records — a length running past the end with a valid record further on,
// a checksum failure with non-zero data after the record — is corruption: truncating there
// would silently drop acknowledged batches.
func classifyFailure(tail []byte, st status, n int) error {
	if allZero(tail) {
		return errTorn
	}
	if off, ok := validRecordAfter(tail); ok {
		return fmt.Errorf("%s, but a valid record follows at +%d", st, off)
	}
	if st == recBadCRC && !allZero(tail[n:]) {
		return fmt.Errorf("%s with %d bytes after the record", st, len(tail)-n)
	}
	return errTorn
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// validRecordAfter looks for a checksummed record starting anywhere after tail's first byte.
func validRecordAfter(tail []byte) (int, bool) {
	for off := 1; off+5 <= len(tail); off++ {
		t := tail[off+4]
		if t != recPut && t != recDelete && t != recCursor {
			continue
		}
		if _, _, st := decode(&sliceSource{data: tail[off:]}); st == recOK {
			return off, true
		}
	}
	return 0, false
}
