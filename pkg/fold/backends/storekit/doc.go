// Package storekit holds the small building blocks the fold Store backends share: the
// directory marker that names the backend owning a directory, mutation validation and the
// close guard that turns use-after-Close into fold.ErrClosed.
//
// It exists so that pkg/fold/pebble and pkg/fold/memory agree on these rules without
// importing each other; applications use pkg/fold/backends instead.
package storekit
