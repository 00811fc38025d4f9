package memory

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/foldtest"
)

// testLog encodes batches as a log and returns it with the end offset of each batch.
func testLog(batches []foldtest.Batch) ([]byte, []int64) {
	b := appendHeader(nil)
	ends := []int64{int64(len(b))}
	for _, bt := range batches {
		for _, m := range bt.Muts {
			b = appendMutation(b, m)
		}
		b = appendCursor(b, bt.State)
		ends = append(ends, int64(len(b)))
	}
	return b, ends
}

func sampleLog(t *testing.T) ([]byte, []int64) {
	t.Helper()
	return testLog(foldtest.RandomLog(rand.New(rand.NewPCG(1, 1)), 120, 20, 30, 6))
}

func nop(*record) error { return nil }

func TestParseCutAnywhere(t *testing.T) {
	data, ends := sampleLog(t)
	for cut := int(headerLen); cut <= len(data); cut++ {
		end, err := parseLog(data[:cut], nop)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		want := ends[0]
		for _, e := range ends {
			if e <= int64(cut) {
				want = e
			}
		}
		if end != want {
			t.Fatalf("cut at %d: end %d, want %d (last complete batch)", cut, end, want)
		}
	}
}

func TestParseTrailingZeros(t *testing.T) {
	data, ends := sampleLog(t)
	for _, n := range []int{1, 4, 5, 17, 4096} {
		end, err := parseLog(append(bytes.Clone(data), make([]byte, n)...), nop)
		if err != nil || end != ends[len(ends)-1] {
			t.Fatalf("%d trailing zeros: end %d err %v, want %d", n, end, err, ends[len(ends)-1])
		}
	}
	// Zeros after a torn record are a torn tail too.
	torn := append(bytes.Clone(data[:ends[len(ends)-1]-3]), make([]byte, 100)...)
	if end, err := parseLog(torn, nop); err != nil || end != ends[len(ends)-2] {
		t.Fatalf("torn record then zeros: end %d err %v", end, err)
	}
}

// TestParseDamageMidFile flips every byte before the last record: each damage must be
// reported as corruption, never read as a torn tail (which would silently drop batches).
func TestParseDamageMidFile(t *testing.T) {
	data, ends := sampleLog(t)
	lastRecord := ends[len(ends)-1] - (5 + 1 + cursorLen) // the final CURSOR record
	for _, x := range []byte{0x01, 0x80, 0xff} {
		for off := int64(headerLen); off < lastRecord; off++ {
			d := bytes.Clone(data)
			d[off] ^= x
			if _, err := parseLog(d, nop); !errors.Is(err, fold.ErrCorrupted) {
				t.Fatalf("byte %d ^ %#x: %v, want ErrCorrupted", off, x, err)
			}
		}
	}
}

// TestParseDamageLastRecord: damage in the final record cannot be told from a torn write;
// the batch it ends is dropped (the cursor goes back with its data).
func TestParseDamageLastRecord(t *testing.T) {
	data, ends := sampleLog(t)
	for off := ends[len(ends)-1] - 5; off < ends[len(ends)-1]; off++ {
		d := bytes.Clone(data)
		d[off] ^= 0x10
		end, err := parseLog(d, nop)
		if err != nil || end != ends[len(ends)-2] {
			t.Fatalf("byte %d: end %d err %v, want %d", off, end, err, ends[len(ends)-2])
		}
	}
}

func TestParseHeader(t *testing.T) {
	data, _ := sampleLog(t)
	for name, d := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("PGSX"), data[4:]...),
		"short":     data[:3],
		"version 2": append([]byte("PGSS\x02\x00"), data[6:]...),
	} {
		if _, err := parseLog(d, nop); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestParseForeignRecords: checksummed records that break slipstream's conventions (a
// 10-byte version token, a short cursor, unknown flags) are corruption, not data.
func TestParseForeignRecords(t *testing.T) {
	rec := func(typ byte, payload ...byte) []byte {
		b, start := beginRecord(appendHeader(nil), typ)
		return endRecord(append(b, payload...), start)
	}
	cases := map[string][]byte{
		"put with 10-byte version": rec(recPut, 1, 0, 'k', 1, 0, 0, 0, 'v', 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
		"put without version":      rec(recPut, 1, 0, 'k', 1, 0, 0, 0, 'v', 0),
		"cursor of 4 bytes":        rec(recCursor, 4, 0, 0, 0, 1),
		"cursor with unknown flag": rec(recCursor, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0x02),
	}
	for name, d := range cases {
		d = appendCursor(d, fold.State{Cursor: 1}) // valid data after it
		if _, err := parseLog(d, nop); !errors.Is(err, fold.ErrCorrupted) {
			t.Errorf("%s: %v, want ErrCorrupted", name, err)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	muts := []fold.Mutation{
		{Op: fold.MutPut, Key: "k", Value: []byte("value"), Revision: 1<<64 - 1},
		{Op: fold.MutPut, Key: "empty", Revision: 2},
		{Op: fold.MutDelete, Key: "gone", Revision: 3},
		{Op: fold.MutForget, Key: "forgotten"},
	}
	states := []fold.State{{Cursor: 9}, {Cursor: 1 << 40, Resyncing: true}}
	var b []byte
	for _, m := range muts {
		b = appendMutation(b, m)
	}
	for _, st := range states {
		b = appendCursor(b, st)
	}
	src := &sliceSource{data: b}
	for i, want := range muts {
		rec, _, st := decode(src)
		if st != recOK {
			t.Fatalf("mutation %d: %v", i, st)
		}
		got, err := rec.mutation()
		if err != nil || got.Op != want.Op || got.Key != want.Key || got.Revision != want.Revision || !bytes.Equal(got.Value, want.Value) {
			t.Fatalf("mutation %d = %+v %v, want %+v", i, got, err, want)
		}
	}
	for i, want := range states {
		rec, _, st := decode(src)
		if got, err := rec.state(); st != recOK || err != nil || got != want {
			t.Fatalf("state %d = %+v %v %v, want %+v", i, got, st, err, want)
		}
	}
}
