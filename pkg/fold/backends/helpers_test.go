package backends

import "github.com/slipstream-dev/slipstream/pkg/fold/pebble"

func pebbleTestOptions() pebble.Options {
	return pebble.Options{CacheSize: 8 << 20, MemTableSize: 4 << 20}
}
