package export

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

func writeExport(t testing.TB, f fold.Reader, meta Meta) ([]byte, Summary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := Write(&buf, f, meta)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if sum.Bytes != int64(buf.Len()) {
		t.Fatalf("summary says %d bytes, wrote %d", sum.Bytes, buf.Len())
	}
	return buf.Bytes(), sum
}

func readAll(data []byte, exp Expect) ([]fold.Entry, Summary, error) {
	rd, err := Open(bytes.NewReader(data), exp)
	if err != nil {
		return nil, Summary{}, err
	}
	var out []fold.Entry
	for e, err := range rd.All() {
		if err != nil {
			return out, Summary{}, err
		}
		out = append(out, e)
	}
	return out, rd.Summary(), nil
}

func TestRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 3*targetFramePayload) // a record in a frame of its own
	src := newSliceFold(9000,
		append(genEntries(5000, 40),
			live("m.big", string(big), 700),
			live("m.empty", "", 701),
			tomb("m.gone", 702))...)
	created := time.Date(2026, 11, 26, 5, 0, 0, 123, time.UTC)
	meta := Meta{Bucket: "routes", Scope: kv.Prefixes("k.", "m."), Backend: "test", Created: created}
	data, sum := writeExport(t, src, meta)

	got, rsum, err := readAll(data, ExpectFold("routes", kv.Prefixes("m.", "k.")))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if rsum.Bytes != sum.Bytes || rsum.Checksum != sum.Checksum || rsum.Header.Cursor != sum.Header.Cursor {
		t.Errorf("reader summary %+v, writer summary %+v", rsum, sum)
	}
	h := rsum.Header
	if h.Cursor != 9000 || h.Bucket != "routes" || h.Backend != "test" || !h.Created.Equal(created) ||
		h.Version != FormatVersion || h.Count() != uint64(len(src.entries)) || h.Tombstones != 1001 {
		t.Errorf("header %+v", h)
	}
	if len(got) != len(src.entries) {
		t.Fatalf("read %d entries, want %d", len(got), len(src.entries))
	}
	for i, e := range got {
		w := src.entries[i]
		if e.Key != w.Key || e.Revision != w.Revision || e.Live != w.Live || !bytes.Equal(e.Value, w.Value) {
			t.Fatalf("entry %d = %q rev %d live %v (%d bytes), want %q rev %d live %v (%d bytes)",
				i, e.Key, e.Revision, e.Live, len(e.Value), w.Key, w.Revision, w.Live, len(w.Value))
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	ok := Meta{Bucket: "b", Scope: kv.Prefixes("a.")}
	resync := newSliceFold(5, live("a.x", "v", 1))
	resync.st.Resyncing = true
	lying := newSliceFold(5, live("a.x", "v", 1))
	lying.statsLie = 1
	for name, tc := range map[string]struct {
		f    fold.Reader
		meta Meta
	}{
		"cursor zero":   {newSliceFold(0), ok},
		"resyncing":     {resync, ok},
		"no bucket":     {newSliceFold(5, live("a.x", "v", 1)), Meta{Scope: kv.Prefixes("a.")}},
		"out of scope":  {newSliceFold(5, live("a.x", "v", 1), live("b.y", "v", 2)), ok},
		"invalid scope": {newSliceFold(5, live("a.x", "v", 1)), Meta{Bucket: "b", Scope: kv.Prefixes("a")}},
		"stats lie":     {lying, ok},
		"rev > cursor":  {newSliceFold(5, live("a.x", "v", 6)), ok},
		"rev zero":      {newSliceFold(5, live("a.x", "v", 0)), ok},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Write(&bytes.Buffer{}, tc.f, tc.meta)
			if !errors.Is(err, ErrNotExportable) {
				t.Fatalf("Write = %v, want ErrNotExportable", err)
			}
		})
	}
}

// smallExport is a few records spread over several frames (a tiny frame target is not
// available, so values are sized to split frames).
func smallExport(t testing.TB) []byte {
	t.Helper()
	src := newSliceFold(10, live("a.1", "one", 1), tomb("a.2", 2), live("a.3", "three", 3))
	data, _ := writeExport(t, src, Meta{Bucket: "b", Scope: kv.Prefixes("a."), Backend: "test",
		Created: time.Unix(1, 0)})
	return data
}

func TestTruncatedAtEveryByte(t *testing.T) {
	data := smallExport(t)
	for n := 0; n < len(data); n++ {
		_, _, err := readAll(data[:n], Expect{})
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d of %d: err = %v, want ErrTruncated", n, len(data), err)
		}
	}
}

func TestBitFlips(t *testing.T) {
	data := smallExport(t)
	for i := range len(data) * 8 {
		bad := bytes.Clone(data)
		bad[i/8] ^= 1 << (i % 8)
		_, _, err := readAll(bad, Expect{})
		want := ErrChecksum
		if i/8 < len(magic) {
			want = ErrForeign
		}
		if !errors.Is(err, want) {
			t.Fatalf("flip of bit %d (byte %d): err = %v, want %v", i%8, i/8, err, want)
		}
	}
}

func TestForeign(t *testing.T) {
	data := smallExport(t)
	for name, tc := range map[string]struct {
		data []byte
		exp  Expect
	}{
		"other bucket":     {data, ExpectFold("c", kv.Prefixes("a."))},
		"other scope":      {data, ExpectFold("b", kv.All())},
		"narrower scope":   {data, ExpectFold("b", kv.Prefixes("a.x."))},
		"not an export":    {[]byte("PK\x03\x04 this is a zip file, not an export"), Expect{}},
		"json":             {[]byte(`{"bucket":"b"}`), Expect{}},
		"empty magic only": {[]byte{0x89, 'S', 'L', 'E', 'Y'}, Expect{}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := readAll(tc.data, tc.exp); !errors.Is(err, ErrForeign) {
				t.Fatalf("err = %v, want ErrForeign", err)
			}
		})
	}
}

func TestFutureVersion(t *testing.T) {
	data := smallExport(t)
	copy(data, encodePreamble(FormatVersion+1))
	_, _, err := readAll(data, Expect{})
	if !errors.Is(err, ErrUnsupportedVersion) || !errors.Is(err, ErrInvalidExport) {
		t.Fatalf("err = %v, want ErrUnsupportedVersion", err)
	}
}

// frames splits an export into its preamble and frames.
func frames(t *testing.T, data []byte) (pre []byte, fs [][]byte) {
	t.Helper()
	pre, rest := data[:preambleLen], data[preambleLen:]
	for len(rest) > 0 {
		n := frameHeaderLen + int(binary.LittleEndian.Uint32(rest[1:5])) + frameCRCLen
		fs = append(fs, rest[:n])
		rest = rest[n:]
	}
	return pre, fs
}

func TestDroppedOrDuplicatedFrame(t *testing.T) {
	src := newSliceFold(1<<20, genEntries(3000, 200)...)
	data, _ := writeExport(t, src, Meta{Bucket: "b", Scope: kv.Prefixes("k.")})
	pre, fs := frames(t, data)
	if len(fs) < 5 {
		t.Fatalf("want several record frames, got %d frames", len(fs))
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(append([][]byte{pre}, parts...), nil) }
	dropped := join(append(append([][]byte{}, fs[:2]...), fs[3:]...)...)
	if _, _, err := readAll(dropped, Expect{}); !errors.Is(err, ErrChecksum) {
		t.Errorf("dropped frame: err = %v, want ErrChecksum", err)
	}
	swapped := append([][]byte{}, fs...)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	if _, _, err := readAll(join(swapped...), Expect{}); !errors.Is(err, ErrInvalidExport) {
		t.Errorf("swapped frames: err = %v, want an invalid export", err)
	}
}

func TestTrailingData(t *testing.T) {
	data := append(smallExport(t), 0)
	if _, _, err := readAll(data, Expect{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

// TestMalformedWithValidChecksums re-frames a bad record with correct checksums: the
// reader must still refuse it.
func TestMalformedWithValidChecksums(t *testing.T) {
	rec := func(op byte, key string, rev uint64, val string) []byte {
		body := append([]byte{op}, binary.AppendUvarint(nil, uint64(len(key)))...)
		body = append(body, key...)
		body = binary.AppendUvarint(body, rev)
		body = append(body, val...)
		return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
	}
	for name, records := range map[string][]byte{
		"out of order":    append(rec(recLive, "a.2", 1, "v"), rec(recLive, "a.1", 2, "v")...),
		"duplicate":       append(rec(recLive, "a.1", 1, "v"), rec(recLive, "a.1", 2, "v")...),
		"outside scope":   rec(recLive, "b.1", 1, "v"),
		"unknown op":      rec(9, "a.1", 1, "v"),
		"tombstone value": rec(recTombstone, "a.1", 1, "v"),
		"beyond cursor":   rec(recLive, "a.1", 11, "v"),
		"empty key":       rec(recLive, "", 1, "v"),
	} {
		t.Run(name, func(t *testing.T) {
			data := craft(t, 10, records, 2)
			if _, _, err := readAll(data, Expect{}); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

// craft builds an export with a valid preamble, header, one records frame and a trailer
// whose checksums all match.
func craft(t *testing.T, cursor uint64, records []byte, count uint64) []byte {
	t.Helper()
	var out []byte
	frame := func(typ byte, p []byte) {
		var fh [frameHeaderLen]byte
		fh[0] = typ
		binary.LittleEndian.PutUint32(fh[1:5], uint32(len(p)))
		binary.LittleEndian.PutUint32(fh[5:9], crc32.Checksum(fh[:5], castagnoli))
		out = append(out, fh[:]...)
		out = append(out, p...)
		out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(p, castagnoli))
	}
	out = append(out, encodePreamble(FormatVersion)...)
	frame(frameHeader, encodeHeader(nil, Header{Bucket: "b", Scope: kv.Prefixes("a."), Cursor: cursor, Live: count}))
	frame(frameRecords, records)
	body := len(out)
	tr := binary.LittleEndian.AppendUint64(nil, count)
	tr = binary.LittleEndian.AppendUint64(tr, uint64(body))
	tr = binary.LittleEndian.AppendUint64(tr, 0)
	tr = binary.LittleEndian.AppendUint32(tr, crc32.Checksum(out, castagnoli))
	frame(frameTrailer, tr)
	return out
}

func TestCraftedValidExportReads(t *testing.T) {
	// Guards the crafting helper: without this, TestMalformedWithValidChecksums could pass
	// on exports broken for another reason.
	body := append(binary.AppendUvarint(nil, 7), append([]byte{recLive, 3}, "a.1\x01v"...)...)
	if _, _, err := readAll(craft(t, 10, body, 1), Expect{}); err != nil {
		t.Fatalf("crafted export: %v", err)
	}
}
