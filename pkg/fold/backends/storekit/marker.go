package storekit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// MarkerName is the file in a store directory that names the backend owning it.
const MarkerName = "SLIPSTREAM-FOLD"

const (
	markerTemp  = MarkerName + ".tmp"
	markerTitle = "slipstream fold store"
)

var (
	// ErrBackendMismatch: the directory holds a store of another backend.
	ErrBackendMismatch = errors.New("fold: directory holds another backend's store")
	// ErrUnsupportedFormat: the store was written by a newer format version than this build
	// reads. It is not corruption: re-seeding would throw away a healthy store.
	ErrUnsupportedFormat = errors.New("fold: unsupported store format version")
)

// Marker identifies the backend and format version of a store directory.
type Marker struct {
	Backend string
	Format  int
}

func (m Marker) encode() []byte {
	return fmt.Appendf(nil, "%s\nbackend: %s\nformat: %d\n", markerTitle, m.Backend, m.Format)
}

// ReadMarker reads dir's marker. ok is false when dir or the marker does not exist. A marker
// that cannot be parsed is reported as fold.ErrUnknownBackend.
func ReadMarker(fs vfs.FS, dir string) (m Marker, ok bool, err error) {
	f, err := fs.Open(fs.PathJoin(dir, MarkerName))
	if errors.Is(err, os.ErrNotExist) {
		return Marker{}, false, nil
	}
	if err != nil {
		return Marker{}, false, fmt.Errorf("read store marker: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return Marker{}, false, fmt.Errorf("read store marker: %w", err)
	}
	m, err = parseMarker(data)
	if err != nil {
		return Marker{}, false, fmt.Errorf("%w: %s: bad marker %s: %w", fold.ErrUnknownBackend, dir, MarkerName, err)
	}
	return m, true, nil
}

func parseMarker(data []byte) (Marker, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	if !sc.Scan() || sc.Text() != markerTitle {
		return Marker{}, errors.New("missing title line")
	}
	var m Marker
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			return Marker{}, fmt.Errorf("malformed line %q", sc.Text())
		}
		switch k {
		case "backend":
			m.Backend = v
		case "format":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return Marker{}, fmt.Errorf("bad format version %q", v)
			}
			m.Format = n
		}
	}
	if m.Backend == "" || m.Format == 0 {
		return Marker{}, errors.New("backend or format missing")
	}
	return m, nil
}

// WriteMarker writes dir's marker atomically (temp file, sync, rename, sync dir).
func WriteMarker(fs vfs.FS, dir string, m Marker) error {
	if fs == nil {
		fs = vfs.Default
	}
	tmp := fs.PathJoin(dir, markerTemp)
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("write store marker: %w", err)
	}
	_, err = f.Write(m.encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, fs.PathJoin(dir, MarkerName))
	}
	if err == nil {
		err = SyncDir(fs, dir)
	}
	if err != nil {
		return fmt.Errorf("write store marker: %w", err)
	}
	return nil
}

// SyncDir fsyncs a directory so that renames and creations in it are durable.
func SyncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Prepare readies dir for a store of backend want: it creates dir and its marker when dir
// is missing or empty, accepts a dir whose marker names want at a format it reads, and
// refuses anything else: another backend's store (ErrBackendMismatch), a newer format
// (ErrUnsupportedFormat), or files without a marker (fold.ErrUnknownBackend). fresh is true
// when the marker was just written.
func Prepare(fs vfs.FS, dir string, want Marker) (fresh bool, err error) {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("create store dir: %w", err)
	}
	m, ok, err := ReadMarker(fs, dir)
	if err != nil {
		return false, err
	}
	if ok {
		if m.Backend != want.Backend {
			return false, fmt.Errorf("%w: %s holds a %q store, not %q", ErrBackendMismatch, dir, m.Backend, want.Backend)
		}
		if m.Format > want.Format {
			return false, fmt.Errorf("%w: %s has %s format %d, this build reads up to %d",
				ErrUnsupportedFormat, dir, m.Backend, m.Format, want.Format)
		}
		return false, nil
	}
	names, err := fs.List(dir)
	if err != nil {
		return false, fmt.Errorf("list store dir: %w", err)
	}
	for _, n := range names {
		if n != markerTemp && n != "." && n != ".." {
			return false, fmt.Errorf("%w: %s holds files (%s) but no %s marker", fold.ErrUnknownBackend, dir, n, MarkerName)
		}
	}
	if err := WriteMarker(fs, dir, want); err != nil {
		return false, err
	}
	return true, nil
}
