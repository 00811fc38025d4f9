package memory

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/foldtest"
)

func errorsIsCorrupted(err error) bool { return errors.Is(err, fold.ErrCorrupted) }

// FuzzParseLog feeds arbitrary bytes to the log parser: it must not panic or over-allocate,
// and when it accepts a log, the prefix it keeps must parse to the same end with the same
// records (truncating a torn tail is stable).
func FuzzParseLog(f *testing.F) {
	data, _ := testLog(foldtest.RandomLog(rand.New(rand.NewPCG(4, 4)), 12, 4, 8, 3))
	f.Add(data)
	f.Add(append(bytes.Clone(data), 0, 0, 0))
	f.Add(data[:len(data)-3])
	f.Fuzz(func(t *testing.T, data []byte) {
		var n1 int
		end, err := parseLog(data, func(*record) error { n1++; return nil })
		if err != nil {
			return
		}
		if end < headerLen || end > int64(len(data)) {
			t.Fatalf("end %d outside [%d, %d]", end, headerLen, len(data))
		}
		var n2 int
		end2, err := parseLog(data[:end], func(*record) error { n2++; return nil })
		if err != nil || end2 != end {
			t.Fatalf("re-parse of the kept prefix: end %d err %v, want %d", end2, err, end)
		}
		if n2 > n1 {
			t.Fatalf("kept prefix has %d records, whole log %d", n2, n1)
		}
	})
}

// FuzzRecordRoundTrip: every mutation and state encodes to a record that decodes back.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("key", []byte("value"), uint64(7), uint8(fold.MutPut), uint64(9), false)
	f.Add("k", []byte{}, uint64(0), uint8(fold.MutForget), uint64(0), true)
	f.Fuzz(func(t *testing.T, key string, value []byte, rev uint64, op uint8, cursor uint64, resync bool) {
		if key == "" || len(key) > 1<<16-1 || op < 1 || op > 3 {
			return
		}
		m := fold.Mutation{Op: fold.MutOp(op), Key: key, Value: value, Revision: rev}
		st := fold.State{Cursor: cursor, Resyncing: resync}
		src := &sliceSource{data: appendCursor(appendMutation(nil, m), st)}
		rec, _, status := decode(src)
		if status != recOK {
			t.Fatalf("decode mutation: %v", status)
		}
		got, err := rec.mutation()
		if err != nil || got.Op != m.Op || got.Key != key {
			t.Fatalf("mutation = %+v %v, want %+v", got, err, m)
		}
		if m.Op == fold.MutPut && (!bytes.Equal(got.Value, value) || got.Revision != rev) {
			t.Fatalf("put = %+v, want %+v", got, m)
		}
		if m.Op == fold.MutDelete && got.Revision != rev {
			t.Fatalf("delete revision %d, want %d", got.Revision, rev)
		}
		rec, _, status = decode(src)
		if gs, err := rec.state(); status != recOK || err != nil || gs != st {
			t.Fatalf("state = %+v %v %v, want %+v", gs, status, err, st)
		}
	})
}
