package export

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/memory"
	"github.com/slipstream-dev/slipstream/pkg/fold/pebble"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Benchmarks (make bench; SLIPSTREAM_BENCH_KEYS sets the fold size, default 1M keys of
// 256 B). Each iteration also writes the same number of bytes to a plain file,
// sequentially, with an fsync (the export and the import are durable too), and reports
// x_plain = plain write time / measured time: the goal is >= 0.5.

const benchValueSize = 256

func benchKeys(b *testing.B) int {
	if s := os.Getenv("SLIPSTREAM_BENCH_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("SLIPSTREAM_BENCH_KEYS=%q: want a positive integer", s)
		}
		return n
	}
	return 1_000_000
}

// benchFixture is a pebble fold and its export on file://, built once per process.
var benchFixture struct {
	once    sync.Once
	err     error
	root    string
	foldDir string
	loc     string
	obj     Object
	bytes   int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchFixture.root != "" {
		os.RemoveAll(benchFixture.root)
	}
	os.Exit(code)
}

func benchSetup(b *testing.B) {
	b.Helper()
	f := &benchFixture
	f.once.Do(func() { f.err = buildBenchFixture(benchKeys(b)) })
	if f.err != nil {
		b.Fatal(f.err)
	}
}

func buildBenchFixture(n int) error {
	f := &benchFixture
	root, err := os.MkdirTemp("", "slipstream-export-bench-")
	if err != nil {
		return err
	}
	f.root, f.foldDir, f.loc = root, filepath.Join(root, "fold"), filepath.Join(root, "exports")
	st, err := pebble.Open(f.foldDir, pebble.Options{Sync: pebble.SyncNone})
	if err != nil {
		return err
	}
	defer st.Close()
	val := make([]byte, benchValueSize)
	batch := make([]fold.Mutation, 0, 1<<15)
	for i := range n {
		for j := range val {
			val[j] = byte(i*31 + j)
		}
		batch = append(batch, fold.Mutation{Op: fold.MutPut, Key: fmt.Sprintf("k.%09d", i), Value: append([]byte(nil), val...), Revision: uint64(i + 1), Prior: fold.Absent})
		if len(batch) == cap(batch) || i == n-1 {
			if err := st.Apply(batch, fold.State{Cursor: uint64(i + 1)}); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := os.MkdirAll(f.loc, 0o755); err != nil {
		return err
	}
	l, err := OpenLocation(context.Background(), "file://"+f.loc)
	if err != nil {
		return err
	}
	defer l.Close()
	snap, err := st.Snapshot()
	if err != nil {
		return err
	}
	defer snap.Close()
	f.obj, _, err = l.Upload(context.Background(), snap, Meta{Bucket: "bench", Scope: kv.Prefixes("k."), Backend: "pebble"})
	f.bytes = f.obj.Size
	return err
}

// plainWrite writes n bytes sequentially to a new file in dir and fsyncs it.
func plainWrite(b *testing.B, dir string, n int64) time.Duration {
	b.Helper()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	start := time.Now()
	fh, err := os.Create(filepath.Join(dir, "plain"))
	if err != nil {
		b.Fatal(err)
	}
	for left := n; left > 0; left -= int64(len(buf)) {
		if _, err := fh.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := fh.Sync(); err != nil {
		b.Fatal(err)
	}
	fh.Close()
	d := time.Since(start)
	os.Remove(fh.Name())
	return d
}

// syncFile fsyncs path (fileblob does not).
func syncFile(b *testing.B, path string) {
	fh, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	if err := fh.Sync(); err != nil {
		b.Fatal(err)
	}
}

// report reports the rates of b.N runs of bytes each (measured and plain are their sums).
func report(b *testing.B, name string, measured, plain time.Duration, bytes int64) {
	total := float64(bytes) * float64(b.N)
	b.ReportMetric(total/measured.Seconds()/1e6, name+"_MB/s")
	b.ReportMetric(total/plain.Seconds()/1e6, "plain_MB/s")
	b.ReportMetric(plain.Seconds()/measured.Seconds(), "x_plain")
}

// BenchmarkExportFile: snapshot of a pebble fold streamed to file:// (durable).
func BenchmarkExportFile(b *testing.B) {
	benchSetup(b)
	f := &benchFixture
	st, err := pebble.Open(f.foldDir, pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	dir := b.TempDir()
	l, err := OpenLocation(context.Background(), "file://"+dir)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var measured, plain time.Duration
	var size int64
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		snap, err := st.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		o, _, err := l.Upload(context.Background(), snap, Meta{Bucket: "bench", Scope: kv.Prefixes("k."), Backend: "pebble"})
		snap.Close()
		if err != nil {
			b.Fatal(err)
		}
		syncFile(b, filepath.Join(dir, o.Key))
		measured += time.Since(start)
		size = o.Size
		b.StopTimer()
		plain += plainWrite(b, dir, o.Size)
		if err := l.Delete(context.Background(), o); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.SetBytes(size)
	report(b, "export", measured, plain, size)
}

// BenchmarkImport: download + verify + stage into a store + swap, per backend.
func BenchmarkImport(b *testing.B) {
	benchSetup(b)
	for _, be := range []struct {
		name string
		open OpenStore
	}{
		{"pebble", func(d string) (fold.Store, error) { return pebble.Open(d, pebble.Options{Sync: pebble.SyncNone}) }},
		{"memory", func(d string) (fold.Store, error) { return memory.Open(d, memory.Options{Sync: memory.SyncNone}) }},
	} {
		b.Run(be.name, func(b *testing.B) {
			f := &benchFixture
			l, err := OpenLocation(context.Background(), "file://"+f.loc)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			dir := b.TempDir()
			var measured, plain time.Duration
			b.ResetTimer()
			for range b.N {
				final := filepath.Join(dir, "fold")
				start := time.Now()
				r, err := l.Reader(context.Background(), f.obj)
				if err != nil {
					b.Fatal(err)
				}
				st, sum, err := Import(context.Background(), bufio.NewReaderSize(r, 1<<20), StagingDir(final), final,
					StageOptions{Expect: ExpectFold("bench", kv.Prefixes("k.")), Open: be.open})
				r.Close()
				if err != nil {
					b.Fatal(err)
				}
				if err := st.Close(); err != nil { // Close flushes: the import is durable
					b.Fatal(err)
				}
				measured += time.Since(start)
				if sum.Bytes != f.bytes {
					b.Fatalf("imported %d bytes, export has %d", sum.Bytes, f.bytes)
				}
				b.StopTimer()
				plain += plainWrite(b, dir, f.bytes)
				os.RemoveAll(final)
				b.StartTimer()
			}
			b.SetBytes(f.bytes)
			report(b, "import", measured, plain, f.bytes)
		})
	}
}
