// Package memory is the default fold.Store backend for folds that fit in RAM: the fold is
// held in a copy-on-write B-tree and persisted in an append-only log in the seed's PGSS
// format (docs/memory-log-format.md).
//
// Log conventions:
//   - Header "PGSS" ++ version:u16le (1). Record: crc32:u32le ++ type:u8 ++ payload, the
//     CRC (IEEE) over type and payload.
//   - REC_PUT (0x01) is a live entry; its version is the NATS revision, 8 bytes big-endian.
//   - REC_DELETE (0x02) with an 8-byte version is a tombstone at that revision; with
//     ver_len 0 it is MutForget (the key is removed).
//   - REC_CURSOR (0x03) holds the stream sequence, 8 bytes big-endian, plus an optional
//     flags byte (bit 0: resyncing).
//   - One Apply is its records followed by one REC_CURSOR. On load, records after the last
//     REC_CURSOR are a torn batch and are discarded (and truncated), so Apply is atomic.
//   - A record that fails at the end of the log (short, bad checksum, zero-filled) is a torn
//     write. A failure followed by any valid record, or a checksum failure followed by
//     non-zero data, is corruption (fold.ErrCorrupted): truncating there could drop
//     acknowledged batches.
//
// Readers never lock: each Apply publishes an immutable clone of the tree (O(1), later
// writes copy only the nodes they touch), so Get, Range and Snapshot see one batch or the
// next, never half of one, and a Snapshot costs nothing until Applies diverge from it.
//
// Compaction rewrites the log as one batch of the current contents when it exceeds
// Options.CompactMinBytes and Options.CompactRatio times that size. It runs in a
// background goroutine from a published view, copies the records appended meanwhile, and
// switches over under the writer lock (fsync, rename, fsync dir). A crash leaves either
// log complete; a leftover temp file is removed on open.
//
// Memory: one 16-byte tree item per key plus one buffer holding key, a 9-byte header and
// value; see BenchmarkMemoryOverhead. Tree nodes are made at full capacity and never
// grow; keys inserted in increasing order (a state sync of a bucket written in key order)
// leave full leaves. Opening replays the log into shared 64 KiB blocks (no per-entry
// allocation or its rounding) and then rebuilds the tree with full nodes, so a reopened
// fold is the densest; the blocks' entries replaced later stay bounded (arenaUse).
package memory
