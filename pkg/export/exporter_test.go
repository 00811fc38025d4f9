package export

import (
	"context"
	"errors"
	"iter"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// storeOf wraps a reader as a fold.Store for Exporter (only Snapshot is used).
type storeOf struct{ fold.Reader }

func (s storeOf) Apply([]fold.Mutation, fold.State) error { return errors.New("read only") }
func (s storeOf) Snapshot() (fold.Snapshot, error)        { return snapOf(s), nil }
func (s storeOf) Flush() error                            { return nil }
func (s storeOf) Close() error                            { return nil }

type snapOf struct{ fold.Reader }

func (snapOf) Close() error { return nil }

func TestExporterRetention(t *testing.T) {
	l := fileLocation(t)
	defer l.Close()
	e, err := NewExporter(ExporterConfig{Location: l, Meta: suiteMeta(), Retention: Retention{Keep: 2}})
	if err != nil {
		t.Fatal(err)
	}
	var last ExportResult
	for c := uint64(1); c <= 4; c++ {
		last, err = e.Export(context.Background(), storeOf{newSliceFold(c*100, live("k.a", "v", 1))})
		if err != nil {
			t.Fatalf("export %d: %v", c, err)
		}
	}
	if last.Object.Cursor != 400 || len(last.Pruned) != 1 || last.Pruned[0].Cursor != 200 {
		t.Fatalf("last export %+v", last)
	}
	ls, _ := l.List(context.Background(), "orders")
	if got := cursors(ls.Exports); len(got) != 2 || got[0] != 400 || got[1] != 300 {
		t.Fatalf("left %v", got)
	}
}

// gatedFold yields half its entries, signals, waits for proceed, then yields the rest.
type gatedFold struct {
	*sliceFold
	started, proceed chan struct{}
}

func (g gatedFold) Range(prefix string, tombstones bool) iter.Seq2[fold.Entry, error] {
	return func(yield func(fold.Entry, error) bool) {
		i := 0
		for e, err := range g.sliceFold.Range(prefix, tombstones) {
			if i == len(g.entries)/2 {
				close(g.started)
				<-g.proceed
			}
			i++
			if !yield(e, err) {
				return
			}
		}
	}
}

// TestExporterLeaseLostAbortsUpload: an exporter whose lease is taken over mid-upload
// aborts it; nothing becomes visible.
func TestExporterLeaseLostAbortsUpload(t *testing.T) {
	f := newNATSFixture(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Now()}
	lease := func(h string) *Lease {
		l, err := NewLease(LeaseConfig{Bucket: f.bucket, Key: LeaseKey("orders"), Holder: h, TTL: 150 * time.Millisecond, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	mine, theirs := lease("node-a"), lease("node-b")
	e, err := NewExporter(ExporterConfig{Location: f.loc, Meta: suiteMeta(), Lease: mine})
	if err != nil {
		t.Fatal(err)
	}
	if err := theirs.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Export(ctx, storeOf{newSliceFold(10, live("k.a", "v", 1))}); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("export while another holds the lease: %v, want ErrLeaseHeld", err)
	}
	if err := theirs.Release(ctx); err != nil {
		t.Fatal(err)
	}

	g := gatedFold{newSliceFold(5000, genEntries(4000, 100)...), make(chan struct{}), make(chan struct{})}
	done := make(chan error, 1)
	go func() { _, err := e.Export(ctx, storeOf{g}); done <- err }()
	<-g.started
	clock.Add(time.Second) // node-a's lease expires; node-b takes it
	if err := theirs.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "exporter notices the lost lease", func() bool {
		mine.mu.Lock()
		defer mine.mu.Unlock()
		return mine.rev == 0
	})
	close(g.proceed)
	if err := <-done; !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("export = %v, want ErrLeaseLost", err)
	}
	ls, err := f.loc.List(ctx, "orders")
	if err != nil || len(ls.Exports) != 0 || len(ls.Ignored) != 0 {
		t.Fatalf("aborted upload left %+v (%v)", ls, err)
	}
}
