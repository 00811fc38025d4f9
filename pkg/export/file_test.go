package export

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fileLocation(t *testing.T) *Location {
	l, err := OpenLocation(context.Background(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFileTransport(t *testing.T) { runTransportSuite(t, fileLocation) }

func TestFileLocationErrors(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "does-not-exist")
	if _, err := OpenLocation(ctx, "file://"+missing); !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrLocation) {
		t.Errorf("missing directory: %v, want ErrUnavailable or ErrLocation", err)
	}
	if l, err := OpenLocation(ctx, "file://"+missing+"?create_dir=true"); err != nil {
		t.Errorf("create_dir: %v", err)
	} else {
		l.Close()
	}
	for _, u := range []string{"nosuchscheme://x", "::not a url", "s3://user:secret@bucket"} {
		_, err := OpenLocation(ctx, u)
		if !errors.Is(err, ErrLocation) {
			t.Errorf("OpenLocation(%q) = %v, want ErrLocation", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks the credential: %v", err)
		}
	}
}

// tempFiles lists the upload temporary files under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, tempSuffix) {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// An upload that fails or is cancelled mid-way leaves no temporary file on file://; one a
// crash left behind (an upload never closed) is listed as Temp, neither an export nor
// ignored, kept while it may still be written, and removed by Prune once stale.
func TestFileUploadLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := OpenLocation(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// Cancelled while the fold is being read, after frames reached the file.
	g := gatedFold{newSliceFold(5000, genEntries(4000, 1000)...), make(chan struct{}), make(chan struct{})}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, _, err := l.Upload(cctx, g, suiteMeta()); done <- err }()
	<-g.started
	if tmp := tempFiles(t, dir); len(tmp) != 1 {
		t.Fatalf("upload in progress: temporary files %v, want one", tmp)
	}
	cancel()
	close(g.proceed)
	if err := <-done; err == nil {
		t.Fatal("cancelled upload succeeded")
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("cancelled upload left %v", tmp)
	}

	// A crashed upload: its writer is never closed, as when the process dies.
	key, err := objectKey("orders", 42, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wctx, abandon := context.WithCancel(ctx)
	w, err := l.b.NewWriter(wctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 1<<16)); err != nil {
		t.Fatal(err)
	}
	defer func() { abandon(); _ = w.Close() }()
	good := upload(t, l, 7, time.Now())
	ls, err := l.List(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Exports) != 1 || ls.Exports[0].Key != good.Key || len(ls.Ignored) != 0 || len(ls.Temp) != 1 ||
		ls.Temp[0].Cursor != 42 || !strings.HasPrefix(ls.Temp[0].Key, key+".") {
		t.Fatalf("listing %+v, want export %s and one temporary file of %s", ls, good.Key, key)
	}
	// Fresh: it may be an upload in progress.
	del, err := l.Prune(ctx, "orders", Retention{Keep: 5}, time.Now())
	if err != nil || len(del) != 0 {
		t.Fatalf("prune of a fresh temporary file deleted %v (%v)", del, err)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 1 {
		t.Fatalf("temporary files %v, want the fresh one kept", tmp)
	}
	// Stale (a grace longer than StaleUpload counts too).
	later := time.Now().Add(StaleUpload + time.Minute)
	del, err = l.Prune(ctx, "orders", Retention{Keep: 5, Grace: 2 * StaleUpload}, later)
	if err != nil || len(del) != 0 {
		t.Fatalf("prune within the grace deleted %v (%v)", del, err)
	}
	del, err = l.Prune(ctx, "orders", Retention{Keep: 5}, later)
	if err != nil || len(del) != 1 || del[0].Key != ls.Temp[0].Key {
		t.Fatalf("prune of a stale temporary file deleted %v (%v), want %s", del, err, ls.Temp[0].Key)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("stale temporary file not removed: %v", tmp)
	}
	if ls, _ := l.List(ctx, "orders"); len(ls.Exports) != 1 || len(ls.Temp) != 0 {
		t.Fatalf("after prune: %+v", ls)
	}
}
