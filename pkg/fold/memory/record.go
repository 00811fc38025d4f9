package memory

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// Log format (docs/memory-log-format.md).
const (
	logMagic        = "PGSS"
	logVersion      = 1
	headerLen       = 6 // len(logMagic) + u16 version
	recPut     byte = 0x01
	recDelete  byte = 0x02
	recCursor  byte = 0x03

	maxVersionLen = 10 // the seed allows version tokens of up to 10 bytes
	revisionLen   = 8  // a NATS revision, big-endian
	cursorLen     = 8  // a stream sequence, big-endian
	cursorFlagLen = 1  // optional flags byte after the sequence
	flagResyncing = 0x01

	// recordOverhead bounds the bytes a record adds to its key and value: crc, type,
	// key and value lengths, version length and a revision.
	recordOverhead = 4 + 1 + 2 + 4 + 1 + revisionLen
)

func appendHeader(b []byte) []byte {
	b = append(b, logMagic...)
	return binary.LittleEndian.AppendUint16(b, logVersion)
}

// beginRecord reserves the CRC and writes the type; endRecord fills in the CRC over
// type+payload.
func beginRecord(b []byte, typ byte) ([]byte, int) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, typ)
	return b, start
}

func endRecord(b []byte, start int) []byte {
	binary.LittleEndian.PutUint32(b[start:], crc32.ChecksumIEEE(b[start+4:]))
	return b
}

func appendPut[V string | []byte](b []byte, key string, value V, rev uint64) []byte {
	b, start := beginRecord(b, recPut)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(value)))
	b = append(b, value...)
	b = append(b, revisionLen)
	b = binary.BigEndian.AppendUint64(b, rev)
	return endRecord(b, start)
}

// appendDelete writes a tombstone at rev, or with forget a REC_DELETE without a version
// (the key is removed entirely).
func appendDelete(b []byte, key string, rev uint64, forget bool) []byte {
	b, start := beginRecord(b, recDelete)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	if forget {
		b = append(b, 0)
	} else {
		b = append(b, revisionLen)
		b = binary.BigEndian.AppendUint64(b, rev)
	}
	return endRecord(b, start)
}

func appendCursor(b []byte, st fold.State) []byte {
	b, start := beginRecord(b, recCursor)
	if st.Resyncing {
		b = append(b, cursorLen+cursorFlagLen)
		b = binary.BigEndian.AppendUint64(b, st.Cursor)
		b = append(b, flagResyncing)
	} else {
		b = append(b, cursorLen)
		b = binary.BigEndian.AppendUint64(b, st.Cursor)
	}
	return endRecord(b, start)
}

// appendMutation encodes one mutation.
func appendMutation(b []byte, m fold.Mutation) []byte {
	switch m.Op {
	case fold.MutPut:
		return appendPut(b, m.Key, m.Value, m.Revision)
	case fold.MutDelete:
		return appendDelete(b, m.Key, m.Revision, false)
	default:
		return appendDelete(b, m.Key, 0, true)
	}
}
