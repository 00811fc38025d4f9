package agent

import (
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends"
	"github.com/slipstream-dev/slipstream/pkg/fold/pebble"
)

// openBackend opens (creating when empty) the fold store of dir with the named backend
// ("" opens whatever dir holds).
func openBackend(dir, backend string) (fold.Store, error) {
	return backends.Open(dir, backends.Config{Backend: backend})
}

// detectBackend names the backend of the store in dir from its marker.
func detectBackend(dir string) (string, error) { return backends.Detect(dir) }

// storeConfig is how `agent run` opens its fold: the backend with the tuning of its flags.
func (c Config) storeConfig() backends.Config {
	sync := pebble.SyncEveryApply
	if !c.PebbleSync {
		sync = pebble.SyncNone
	}
	return backends.Config{Backend: c.Backend, Pebble: pebble.Options{Sync: sync, CacheSize: c.PebbleCache}}
}
