// Package pebble is the on-disk fold.Store backend, for folds larger than RAM, on
// CockroachDB's Pebble LSM.
//
// Every Apply is one Pebble batch holding the entries, the state (cursor and resyncing
// flag) and the running counts, so data and cursor share the write-ahead log and a crash
// never leaves one without the other, with or without fsync per Apply.
//
// Key layout (format 1):
//
//	'e' ++ key          entry: revision:u64be ++ flags:u8 (bit0 live) ++ value (empty for a tombstone)
//	'm' ++ "format"     "slipstream-pebble" ++ version:u16be
//	'm' ++ "state"      cursor:u64be ++ flags:u8 (bit0 resyncing)
//	'm' ++ "counts"     live:u64be ++ tombstones:u64be ++ liveBytes:u64be
//
// The counts make Stats O(1). Reads go through Pebble iterators and snapshots and never
// block Apply. Pebble's corruption errors and entries that do not decode are reported as
// fold.ErrCorrupted; Verify checks the whole store.
package pebble
