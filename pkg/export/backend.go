package export

import (
	"fmt"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends"
)

// Backend returns an OpenStore for backends.Open with cfg. cfg.Backend must name the
// backend ("pebble" or "memory"): a staging directory is empty, so there is nothing to
// detect. The backend of a seeded fold is the node's choice, whatever the export came from.
func Backend(cfg backends.Config) OpenStore {
	return func(dir string) (fold.Store, error) {
		if cfg.Backend == "" {
			return nil, fmt.Errorf("open fold store in %s: %w: name the backend to seed into", dir, fold.ErrUnknownBackend)
		}
		return backends.Open(dir, cfg)
	}
}
