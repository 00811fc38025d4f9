package backends

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
	"github.com/slipstream-dev/slipstream/pkg/fold/memory"
	"github.com/slipstream-dev/slipstream/pkg/fold/pebble"
)

// Backend names.
const (
	Pebble = pebble.BackendName
	Memory = memory.BackendName
)

// Errors a caller may branch on, besides fold.ErrUnknownBackend and fold.ErrCorrupted.
var (
	// ErrBackendMismatch: the directory holds a store of another backend than configured.
	ErrBackendMismatch = storekit.ErrBackendMismatch
	// ErrUnsupportedFormat: the store was written by a newer build.
	ErrUnsupportedFormat = storekit.ErrUnsupportedFormat
)

// Config selects and tunes the backend.
type Config struct {
	// Backend is "pebble", "memory", or "" to use the backend dir already holds (Open then
	// fails with fold.ErrUnknownBackend for an empty or foreign dir).
	Backend string
	Pebble  pebble.Options
	Memory  memory.Options
}

// Detect names the backend whose store dir holds. Errors: fold.ErrUnknownBackend (naming
// dir) when dir is missing, empty, or holds no store marker or an unknown backend.
func Detect(dir string) (string, error) {
	return detect(vfs.Default, dir)
}

func detect(fs vfs.FS, dir string) (string, error) {
	m, ok, err := storekit.ReadMarker(fs, dir)
	if err != nil {
		return "", fmt.Errorf("detect fold store backend: %w", err)
	}
	if !ok {
		return "", fmt.Errorf("detect fold store backend: %w: %s holds no fold store (no %s marker)", fold.ErrUnknownBackend, dir, storekit.MarkerName)
	}
	switch m.Backend {
	case Pebble, Memory:
		return m.Backend, nil
	}
	return "", fmt.Errorf("detect fold store backend: %w: %s holds a %q store", fold.ErrUnknownBackend, dir, m.Backend)
}

// Open opens the store in dir with cfg.Backend, creating it when dir is missing or empty,
// or detects the backend when cfg.Backend is "". Errors: fold.ErrUnknownBackend (unknown
// cfg.Backend, or nothing to detect), ErrBackendMismatch (dir holds the other backend's
// store), ErrUnsupportedFormat, fold.ErrCorrupted, wrapped I/O errors.
func Open(dir string, cfg Config) (fold.Store, error) {
	name := cfg.Backend
	if name == "" {
		fs := cfg.Pebble.FS
		if fs == nil {
			fs = vfs.Default
		}
		var err error
		if name, err = detect(fs, dir); err != nil {
			return nil, fmt.Errorf("open fold store: %w", err)
		}
	}
	switch name {
	case Pebble:
		s, err := pebble.Open(dir, cfg.Pebble)
		if err != nil {
			return nil, err
		}
		return s, nil
	case Memory:
		s, err := memory.Open(dir, cfg.Memory)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("open fold store: %w: backend %q (want %q or %q)", fold.ErrUnknownBackend, name, Pebble, Memory)
}
