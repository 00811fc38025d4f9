package agent

import (
	"errors"
	"fmt"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

func puts(revs ...uint64) []kv.Update {
	var us []kv.Update
	for _, r := range revs {
		us = append(us, kv.Update{Op: kv.OpPut, Key: fmt.Sprintf("k%d", r), Value: []byte("v"), Revision: r})
	}
	return us
}

func revsOf(es []ringEntry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Rev)
	}
	return out
}

func TestRingDeliversInOrderAndResumes(t *testing.T) {
	r := newRing(8, 1<<20, 10)
	pos, err := r.begin(10)
	if err != nil {
		t.Fatal(err)
	}
	r.append(13, puts(11, 13)) // 12 filtered out by scope: the cursor still moves
	r.append(15, puts(14, 15))
	es, cur, _, err := r.read(pos, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(revsOf(es)); got != "[11 13 14 15]" || cur != 15 {
		t.Fatalf("read = %s cursor %d", got, cur)
	}
	es, _, _, _ = r.read(position{After: 13, Epoch: pos.Epoch}, nil, 1)
	if got := fmt.Sprint(revsOf(es)); got != "[14]" {
		t.Fatalf("resume after 13 with max 1 = %s", got)
	}
	if _, err := r.begin(9); !errors.Is(err, errCursorTooOld) {
		t.Fatalf("start below floor: %v", err)
	}
}

func TestRingEvictsAndCutsSlowReader(t *testing.T) {
	r := newRing(4, 1<<20, 0)
	pos, _ := r.begin(0)
	r.append(6, puts(1, 2, 3, 4, 5, 6))
	if r.oldest() != 2 {
		t.Fatalf("floor = %d, want 2", r.oldest())
	}
	if _, _, _, err := r.read(pos, nil, 10); !errors.Is(err, errCursorTooOld) {
		t.Fatalf("slow reader: %v", err)
	}
	es, _, _, err := r.read(position{After: 2, Epoch: pos.Epoch}, nil, 10)
	if err != nil || fmt.Sprint(revsOf(es)) != "[3 4 5 6]" {
		t.Fatalf("read after floor = %v %v", revsOf(es), err)
	}
}

func TestRingByteBound(t *testing.T) {
	r := newRing(100, 3*(ringEntry{Key: "k1", Value: []byte("v")}).size(), 0)
	r.append(5, puts(1, 2, 3, 4, 5))
	if r.n != 3 || r.oldest() != 2 {
		t.Fatalf("n=%d floor=%d, want 3 entries after 2", r.n, r.oldest())
	}
}

func TestRingResetOnDisorderAndWakes(t *testing.T) {
	r := newRing(8, 1<<20, 5)
	pos, _ := r.begin(-1)
	_, _, wake, err := r.read(pos, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	r.append(7, puts(6, 7))
	select {
	case <-wake:
	default:
		t.Fatal("append did not wake the reader")
	}
	// A resync batch carries old revisions: the ring resets and readers are told.
	r.append(9, puts(3, 9))
	if _, _, _, err := r.read(pos, nil, 10); !errors.Is(err, errRingReset) {
		t.Fatalf("after disorder: %v", err)
	}
	// Cursor moving back (recreated bucket) resets too.
	p2, _ := r.begin(-1)
	r.append(2, nil)
	if _, _, _, err := r.read(p2, nil, 10); !errors.Is(err, errRingReset) {
		t.Fatalf("after cursor regression: %v", err)
	}
	r.append(4, puts(3, 4))
	p3 := position{After: 2, Epoch: r.epoch}
	r.close()
	// After close a reader still drains what was applied, then gets errRingClosed.
	if es, _, _, err := r.read(p3, nil, 10); err != nil || fmt.Sprint(revsOf(es)) != "[3 4]" {
		t.Fatalf("drain after close: %v %v", revsOf(es), err)
	}
	if _, _, _, err := r.read(position{After: 4, Epoch: r.epoch}, nil, 10); !errors.Is(err, errRingClosed) {
		t.Fatalf("after close: %v", err)
	}
}
