package agent

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
	"github.com/slipstream-dev/slipstream/pkg/fold/memory"
	"github.com/slipstream-dev/slipstream/pkg/fold/pebble"
)

// openBackend opens (creating when empty) the fold store of dir with the named backend.
// TODO(agent): switch to backends.Open once pkg/fold/backends lands.
func openBackend(dir, backend string) (fold.Store, error) {
	switch backend {
	case "pebble":
		return pebble.Open(dir, pebble.Options{})
	case "memory":
		return memory.Open(dir, memory.Options{})
	}
	return nil, fmt.Errorf("%w: %q", fold.ErrUnknownBackend, backend)
}

// detectBackend names the backend of the store in dir from its marker.
func detectBackend(dir string) (string, error) {
	m, ok, err := storekit.ReadMarker(vfs.Default, dir)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%w: %s holds no fold store", fold.ErrUnknownBackend, dir)
	}
	return m.Backend, nil
}
