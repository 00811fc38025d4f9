// Package backends opens a fold store of the backend a directory holds, or of the one the
// configuration names: "pebble" (on disk, for folds larger than RAM) or "memory" (RAM plus
// an append-only log). Every store directory carries a marker file naming its backend and
// format, so a directory is never opened by the wrong backend.
package backends
