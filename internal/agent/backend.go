package agent

import (
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends"
)

// openBackend opens (creating when empty) the fold store of dir with the named backend
// ("" opens whatever dir holds).
func openBackend(dir, backend string) (fold.Store, error) {
	return backends.Open(dir, backends.Config{Backend: backend})
}

// detectBackend names the backend of the store in dir from its marker.
func detectBackend(dir string) (string, error) { return backends.Detect(dir) }
