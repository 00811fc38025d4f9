package pebble

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

const (
	prefixEntry = 'e'
	prefixMeta  = 'm'
	formatMagic = "slipstream-pebble"
	flagLive    = 0x01
	flagResync  = 0x01
	valueHeader = 9
)

var (
	keyFormat = []byte("mformat")
	keyState  = []byte("mstate")
	keyCounts = []byte("mcounts")
)

func entryKey(key string) []byte {
	b := make([]byte, 0, 1+len(key))
	return append(append(b, prefixEntry), key...)
}

// prefixBounds returns the iterator bounds of entries whose key starts with prefix.
func prefixBounds(prefix string) (lower, upper []byte) {
	lower = entryKey(prefix)
	upper = append([]byte(nil), lower...)
	for i := len(upper) - 1; i >= 0; i-- {
		if upper[i] != 0xff {
			upper[i]++
			return lower, upper[:i+1]
		}
	}
	return lower, nil // unreachable: upper[0] is 'e'
}

func encodeValue(rev uint64, live bool, value []byte) []byte {
	b := make([]byte, valueHeader, valueHeader+len(value))
	binary.BigEndian.PutUint64(b, rev)
	if live {
		b[8] = flagLive
	}
	return append(b, value...)
}

// checkValue validates a stored entry value; key is without the prefix.
func checkValue[K string | []byte](key K, raw []byte) error {
	if len(raw) < valueHeader || raw[8]&^flagLive != 0 || (raw[8]&flagLive == 0 && len(raw) != valueHeader) {
		return fmt.Errorf("%w: entry %q has a malformed value (%d bytes)", fold.ErrCorrupted, key, len(raw))
	}
	return nil
}

// decodeEntry decodes a stored entry; key is without the prefix. The value is copied.
func decodeEntry(key, raw []byte) (fold.Entry, error) {
	if err := checkValue(key, raw); err != nil {
		return fold.Entry{}, err
	}
	e := fold.Entry{Key: string(key), Revision: binary.BigEndian.Uint64(raw), Live: raw[8]&flagLive != 0}
	if e.Live {
		e.Value = append(make([]byte, 0, len(raw)-valueHeader), raw[valueHeader:]...)
	}
	return e, nil
}

func encodeState(st fold.State) []byte {
	b := binary.BigEndian.AppendUint64(nil, st.Cursor)
	if st.Resyncing {
		return append(b, flagResync)
	}
	return append(b, 0)
}

func decodeState(raw []byte) (fold.State, error) {
	if len(raw) != 9 || raw[8]&^flagResync != 0 {
		return fold.State{}, fmt.Errorf("%w: state record malformed (%x)", fold.ErrCorrupted, raw)
	}
	return fold.State{Cursor: binary.BigEndian.Uint64(raw), Resyncing: raw[8]&flagResync != 0}, nil
}

// counts are the persisted statistics.
type counts struct{ live, tombstones, liveBytes uint64 }

func (c counts) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, c.live)
	b = binary.BigEndian.AppendUint64(b, c.tombstones)
	return binary.BigEndian.AppendUint64(b, c.liveBytes)
}

func decodeCounts(raw []byte) (counts, error) {
	if len(raw) != 24 {
		return counts{}, fmt.Errorf("%w: counts record malformed (%d bytes)", fold.ErrCorrupted, len(raw))
	}
	return counts{binary.BigEndian.Uint64(raw), binary.BigEndian.Uint64(raw[8:]), binary.BigEndian.Uint64(raw[16:])}, nil
}

// add counts an entry in; remove counts it out.
func (c *counts) add(keyLen, valueLen int, live bool) {
	if live {
		c.live++
		c.liveBytes += uint64(keyLen + valueLen)
	} else {
		c.tombstones++
	}
}

func (c *counts) remove(keyLen, valueLen int, live bool) {
	if live {
		c.live--
		c.liveBytes -= uint64(keyLen + valueLen)
	} else {
		c.tombstones--
	}
}

func encodeFormat() []byte {
	return binary.BigEndian.AppendUint16([]byte(formatMagic), FormatVersion)
}

// wrapErr marks Pebble corruption as fold.ErrCorrupted.
func wrapErr(op string, err error) error {
	if pebble.IsCorruptionError(err) {
		return fmt.Errorf("%s: %w: %w", op, fold.ErrCorrupted, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
