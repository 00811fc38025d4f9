package export

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"gocloud.dev/blob"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// ContentType of export objects.
const ContentType = "application/vnd.slipstream.export"

// Upload writes snap as a new export of meta.Bucket to the location and returns the
// object and its summary. The object name is new and immutable (create-only write,
// IfNotExist); the object becomes visible only when the whole export was uploaded: on any
// error the upload is aborted (its context cancelled before Close), so a partial object
// never appears. Errors: ErrNotExportable (see Write), ErrExists (name collision, retry),
// ErrUnavailable, ErrAccessDenied, or the store's error.
func (l *Location) Upload(ctx context.Context, snap fold.Reader, meta Meta) (Object, Summary, error) {
	if meta.Created.IsZero() {
		meta.Created = time.Now()
	}
	key, err := objectKey(meta.Bucket, snap.State().Cursor, meta.Created)
	if err != nil {
		return Object{}, Summary{}, err
	}
	if _, ok := ParseKey(key); !ok || meta.Bucket == "" {
		return Object{}, Summary{}, fmt.Errorf("upload export: %w: bucket name %q does not make a valid object name", ErrNotExportable, meta.Bucket)
	}
	return l.uploadKey(ctx, key, snap, meta)
}

// uploadKey uploads to a given key (create-only).
func (l *Location) uploadKey(ctx context.Context, key string, snap fold.Reader, meta Meta) (Object, Summary, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A local file (file://) is made durable before it is renamed into place: fileblob
	// itself never fsyncs, so a crash could otherwise publish a torn object.
	var wb *storekit.WriteBehind
	opts := &blob.WriterOptions{IfNotExist: true, ContentType: ContentType, BeforeWrite: func(as func(any) bool) error {
		var f *os.File
		if as(&f) && f != nil {
			wb = storekit.NewWriteBehind(f, 0)
		}
		return nil
	}}
	w, err := l.b.NewWriter(wctx, key, opts)
	if err != nil {
		return Object{}, Summary{}, fmt.Errorf("upload export %s to %s: %w", key, l.desc, classify(err, nil))
	}
	sum, err := writeTo(w, wb, snap, meta)
	if err != nil {
		cancel() // abort: the writer discards what it has
		_ = w.Close()
		return Object{}, Summary{}, fmt.Errorf("upload export %s to %s: %w", key, l.desc, classifyWrite(err))
	}
	if err := w.Close(); err != nil {
		return Object{}, Summary{}, fmt.Errorf("upload export %s to %s: %w", key, l.desc, classify(err, nil))
	}
	o, err := l.Stat(ctx, key)
	if err != nil {
		return Object{}, Summary{}, fmt.Errorf("upload export: check uploaded object: %w", err)
	}
	if o.Size != sum.Bytes {
		return Object{}, Summary{}, fmt.Errorf("upload export %s to %s: stored %d bytes, wrote %d", key, l.desc, o.Size, sum.Bytes)
	}
	return o, sum, nil
}

// classifyWrite classifies store errors surfacing through Write (it wraps writer errors).
func classifyWrite(err error) error {
	if errors.Is(err, ErrNotExportable) {
		return err
	}
	return classify(err, nil)
}
