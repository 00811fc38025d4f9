package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"

	"gocloud.dev/blob"
	// Drivers for the URL schemes an export location may use.
	_ "gocloud.dev/blob/azureblob" // azblob://container
	_ "gocloud.dev/blob/fileblob"  // file:///dir
	_ "gocloud.dev/blob/gcsblob"   // gs://bucket
	_ "gocloud.dev/blob/s3blob"    // s3://bucket?endpoint=...&use_path_style=true
	"gocloud.dev/gcerrors"
)

// Location is a place exports are stored: a gocloud.dev/blob bucket, optionally below a
// key prefix. Exports of one NATS KV bucket live under "<kv bucket>/". Safe for concurrent
// use.
type Location struct {
	b    *blob.Bucket
	desc string
}

// OpenLocation opens an export location from a gocloud.dev/blob URL:
//
//	file:///var/lib/slipstream/exports
//	s3://my-bucket?region=eu-west-1&prefix=slipstream/
//	s3://exports?endpoint=http://127.0.0.1:8333&use_path_style=true&disable_https=true&region=us-east-1
//	gs://my-bucket?prefix=folds/
//	azblob://my-container
//
// Credentials come from each cloud's standard chain (environment, files, workload
// identity), never from the URL. For file:// URLs temporary files are created next to the
// target (no_tmp_dir) so the final rename never crosses file systems, and no metadata
// sidecar files are written (metadata=skip; pass metadata= to have them); pass
// create_dir=true to create the directory. Errors wrap ErrLocation (bad URL) or
// ErrUnavailable / ErrAccessDenied; opening does not contact the store.
func OpenLocation(ctx context.Context, rawURL string) (*Location, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrLocation, redactErr(err))
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: %s: credentials in the URL are not supported; use the environment", ErrLocation, Redact(rawURL))
	}
	if u.Scheme == "file" {
		q := u.Query()
		if q.Get("no_tmp_dir") == "" {
			q.Set("no_tmp_dir", "true")
		}
		if _, ok := q["metadata"]; !ok {
			// No ".attrs" sidecar: its MD5 of the whole upload (fileblob hashes every
			// byte for it) is the largest CPU cost of an export to a file, and exports
			// carry their own checksums.
			q.Set("metadata", "skip")
		}
		u.RawQuery = q.Encode()
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		cerr := classify(err, ErrLocation)
		if !errors.Is(cerr, ErrLocation) && !errors.Is(cerr, ErrUnavailable) && !errors.Is(cerr, ErrAccessDenied) {
			cerr = fmt.Errorf("%w: %w", ErrLocation, err)
		}
		return nil, fmt.Errorf("open export location %s: %w", Redact(rawURL), cerr)
	}
	return &Location{b: b, desc: Redact(rawURL)}, nil
}

// NewLocation wraps an open bucket (tests, custom drivers); the location owns it.
func NewLocation(b *blob.Bucket, desc string) *Location { return &Location{b: b, desc: desc} }

// String returns the location's URL without its query (which may carry endpoints or
// options but never credentials; keep logs short and safe).
func (l *Location) String() string { return l.desc }

// Close releases the location.
func (l *Location) Close() error { return l.b.Close() }

// Redact returns rawURL without user info and query, for logs and status.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<invalid url>"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func redactErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " " + Redact(ue.URL) + ": " + ue.Err.Error()
	}
	return err.Error()
}

// Listing is the result of List.
type Listing struct {
	// Exports are the export objects, newest first (highest cursor, then latest created).
	Exports []Object
	// Temp are temporary files of unfinished uploads (file:// leaves them behind when an
	// exporter crashes mid-upload): never exports; Prune removes the stale ones.
	Temp []Object
	// Ignored are keys below the bucket's directory that are neither export names nor
	// upload temporary files (foreign files): reported, never touched.
	Ignored []string
}

// List lists the exports of KV bucket bucket. Errors wrap ErrUnavailable (store or its
// bucket unreachable or missing), ErrAccessDenied, or the store's error.
func (l *Location) List(ctx context.Context, bucket string) (Listing, error) {
	var out Listing
	it := l.b.List(&blob.ListOptions{Prefix: bucket + "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Listing{}, fmt.Errorf("list exports of %q at %s: %w", bucket, l.desc, classify(err, nil))
		}
		if obj.IsDir {
			out.Ignored = append(out.Ignored, obj.Key)
			continue
		}
		o, ok := ParseKey(obj.Key)
		if !ok || o.Bucket != bucket {
			if t, ok := parseTempKey(obj.Key); ok && t.Bucket == bucket {
				t.Size, t.ModTime = obj.Size, obj.ModTime
				out.Temp = append(out.Temp, t)
				continue
			}
			out.Ignored = append(out.Ignored, obj.Key)
			continue
		}
		o.Size, o.ModTime = obj.Size, obj.ModTime
		out.Exports = append(out.Exports, o)
	}
	slices.SortFunc(out.Exports, newer)
	return out, nil
}

// Newest returns the newest export of bucket, or ErrNotFound. The newest is not verified:
// Seeder and Download verify.
func (l *Location) Newest(ctx context.Context, bucket string) (Object, error) {
	ls, err := l.List(ctx, bucket)
	if err != nil {
		return Object{}, err
	}
	if len(ls.Exports) == 0 {
		return Object{}, fmt.Errorf("%w: no export of bucket %q at %s", ErrNotFound, bucket, l.desc)
	}
	return ls.Exports[0], nil
}

// Stat returns the export object named key ("bucket/name"). Errors: ErrNotFound (no such
// object, or key is not an export name), ErrUnavailable, ErrAccessDenied.
func (l *Location) Stat(ctx context.Context, key string) (Object, error) {
	o, ok := ParseKey(key)
	if !ok {
		return Object{}, fmt.Errorf("%w: %q is not an export name", ErrNotFound, key)
	}
	attrs, err := l.b.Attributes(ctx, key)
	if err != nil {
		return Object{}, fmt.Errorf("stat export %s at %s: %w", key, l.desc, classify(err, ErrNotFound))
	}
	o.Size, o.ModTime = attrs.Size, attrs.ModTime
	return o, nil
}

// Reader opens the export object for reading (unverified: read it with Open/Stage). The
// caller closes it.
func (l *Location) Reader(ctx context.Context, o Object) (io.ReadCloser, error) {
	r, err := l.b.NewReader(ctx, o.Key, nil)
	if err != nil {
		return nil, fmt.Errorf("read export %s at %s: %w", o.Key, l.desc, classify(err, ErrNotFound))
	}
	return errReader{r: r, desc: o.Key + " at " + l.desc}, nil
}

// errReader classifies read errors of an object body.
type errReader struct {
	r    *blob.Reader
	desc string
}

func (e errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("read export %s: %w", e.desc, classify(err, nil))
	}
	return n, err
}

func (e errReader) Close() error { return e.r.Close() }

// Delete removes the export object o.
func (l *Location) Delete(ctx context.Context, o Object) error {
	if err := l.b.Delete(ctx, o.Key); err != nil {
		return fmt.Errorf("delete export %s at %s: %w", o.Key, l.desc, classify(err, nil))
	}
	return nil
}

// classify adds this package's sentinel for the store error's class. notFound is the
// sentinel for a NotFound code (nil: ErrUnavailable, the bucket itself is missing).
func classify(err error, notFound error) error {
	if notFound == nil {
		notFound = ErrUnavailable
	}
	var sentinel error
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		sentinel = notFound
	case gcerrors.PermissionDenied:
		sentinel = ErrAccessDenied
	case gcerrors.FailedPrecondition, gcerrors.AlreadyExists:
		sentinel = ErrExists
	case gcerrors.InvalidArgument:
		sentinel = ErrLocation
	case gcerrors.Canceled, gcerrors.DeadlineExceeded:
		return err
	default:
		sentinel = classifyUnknown(err)
	}
	if sentinel == nil {
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// classifyUnknown recognises what drivers leave as Unknown: S3 credential errors and
// network failures.
func classifyUnknown(err error) error {
	var api interface{ ErrorCode() string }
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
			"ExpiredToken", "AuthorizationHeaderMalformed", "AuthenticationFailed", "Forbidden":
			return ErrAccessDenied
		case "NoSuchBucket", "ContainerNotFound", "BucketNotFound":
			return ErrUnavailable
		}
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && (status.HTTPStatusCode() == 401 || status.HTTPStatusCode() == 403) {
		return ErrAccessDenied
	}
	var nerr net.Error
	var oerr *net.OpError
	if errors.As(err, &oerr) || errors.As(err, &nerr) || strings.Contains(err.Error(), "connection refused") ||
		strings.Contains(err.Error(), "no such host") {
		return ErrUnavailable
	}
	return nil
}
