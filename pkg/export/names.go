package export

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Object names. Every export is stored once under an immutable name
//
//	<bucket>/<cursor, 20 digits>-<created unix nanos, 19 digits>-<16 hex random>.slex
//
// below the location's prefix (the URL's prefix= parameter). The zero-padded cursor makes
// lexical and numeric order agree; the creation time and the random part keep two exports
// at one cursor (two exporters, a retry) from colliding. The newest export is the one with
// the highest cursor, whoever uploaded last: a slow exporter finishing late with an older
// cursor cannot regress it.
const (
	// Extension ends every export object name.
	Extension   = ".slex"
	cursorWidth = 20 // digits of the largest uint64
	nanosWidth  = 19 // digits of unix nanos until the year 2262
	randomBytes = 8
)

// Object is an export found in (or uploaded to) a location.
type Object struct {
	// Key is the object's full key within the location (bucket/name).
	Key string
	// Bucket is the NATS KV bucket (the first path element).
	Bucket string
	// Cursor and Created are parsed from the name.
	Cursor  uint64
	Created time.Time
	// Size and ModTime come from the object store (zero when unknown).
	Size    int64
	ModTime time.Time
}

// Name returns the object name without the bucket directory.
func (o Object) Name() string { return path.Base(o.Key) }

// newer orders exports: higher cursor first, then later creation, then key.
func newer(a, b Object) int {
	switch {
	case a.Cursor != b.Cursor:
		if a.Cursor > b.Cursor {
			return -1
		}
		return 1
	case !a.Created.Equal(b.Created):
		if a.Created.After(b.Created) {
			return -1
		}
		return 1
	}
	return strings.Compare(b.Key, a.Key)
}

// objectKey returns a fresh object key for an export of bucket at cursor created at t.
func objectKey(bucket string, cursor uint64, t time.Time) (string, error) {
	var r [randomBytes]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("random object name: %w", err)
	}
	return fmt.Sprintf("%s/%0*d-%0*d-%s%s", bucket, cursorWidth, cursor, nanosWidth, t.UnixNano(), hex.EncodeToString(r[:]), Extension), nil
}

// ParseKey parses an export object key ("bucket/name"). ok is false for anything else.
func ParseKey(key string) (Object, bool) {
	bucket, name, found := strings.Cut(key, "/")
	if !found || bucket == "" || strings.Contains(name, "/") || !strings.HasSuffix(name, Extension) {
		return Object{}, false
	}
	parts := strings.Split(strings.TrimSuffix(name, Extension), "-")
	if len(parts) != 3 || len(parts[0]) != cursorWidth || len(parts[1]) != nanosWidth || len(parts[2]) != 2*randomBytes {
		return Object{}, false
	}
	cursor, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil || cursor == 0 {
		return Object{}, false
	}
	nanos, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || nanos < 0 {
		return Object{}, false
	}
	if _, err := hex.DecodeString(parts[2]); err != nil || strings.ToLower(parts[2]) != parts[2] {
		return Object{}, false
	}
	return Object{Key: key, Bucket: bucket, Cursor: cursor, Created: time.Unix(0, nanos).UTC()}, true
}

// tempSuffix ends the temporary file of an unfinished file:// upload: fileblob writes
// "<key>.<unix nanos in hex>.tmp" next to the target (no_tmp_dir) and renames it into
// place on Close. A crash or kill mid-upload leaves it behind.
const tempSuffix = ".tmp"

// parseTempKey parses the key of an unfinished upload's temporary file: an export key
// followed by ".<hex>.tmp". ok is false for anything else.
func parseTempKey(key string) (Object, bool) {
	rest, found := strings.CutSuffix(key, tempSuffix)
	if !found {
		return Object{}, false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 || i == len(rest)-1 {
		return Object{}, false
	}
	if _, err := strconv.ParseUint(rest[i+1:], 16, 64); err != nil {
		return Object{}, false
	}
	o, ok := ParseKey(rest[:i])
	if !ok {
		return Object{}, false
	}
	o.Key = key
	return o, true
}
