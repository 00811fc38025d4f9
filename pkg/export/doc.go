// Package export writes, reads, stores and seeds from exports of a fold: verified,
// self-describing copies of a fold at an applied cursor, kept in object storage so that a
// new node, or one whose cursor NATS has evicted past, starts from an export and takes only
// the tail from NATS.
//
// The pieces, each in its own file:
//
//   - Format (format.go, write.go, read.go; docs/export-format.md): a versioned stream of
//     checksummed frames: header (bucket, scope, cursor, counts), length-prefixed records
//     (key, value, revision, live or tombstone) in key order, and a trailer with a CRC-32C
//     over the whole body. Write streams a fold snapshot; Open/Reader verify while reading
//     and report damage with specific sentinels (ErrTruncated, ErrChecksum, ErrForeign,
//     ErrUnsupportedVersion, ErrMalformed, all matching ErrInvalidExport).
//   - Staging (import.go, bulk.go, swap*.go): Stage writes an export into a fresh store in a
//     staging directory and verifies it, through the store's bulk load when it has one
//     (BulkLoader: pebble ingests sstables, memory writes its log sequentially) or Apply
//     batches; Staged.Commit swaps it into the fold's directory with one rename, and
//     Staged.Replace closes the old store first and hands it back reopened when the swap
//     fails. Nothing unverified ever becomes the fold. Import = Stage + Commit.
//   - Transport (location.go, upload.go, names.go, retention.go): gocloud.dev/blob URLs (file, s3 with
//     endpoint= for S3-compatible servers, gs, azblob). Object names are immutable and carry
//     the zero-padded cursor; uploads are create-only and visible only once complete; the
//     newest export is the one with the highest cursor, found by listing.
//   - Seeding (seed.go): Seeder tries exports newest first, verifies each into staging and
//     checks with a verified kv watch that NATS can continue from its cursor
//     (fold.VerifyResume); the fold's loop continues that watch (Staged.Resume,
//     fold.LoopConfig.Resume), so the tail is fetched once. It backs both the agent's
//     initial seed and the fold.Reseeder hook of fold.Loop.
//   - Exporter (exporter.go): snapshot, upload and retention in one call for the agent's
//     schedule and on-demand trigger, guarded by an optional lease.
//   - Lease (lease.go): a NATS KV compare-and-swap lease so one exporter runs per fold.
//
// Store openers (OpenStore, Backend) keep the package independent of the backend: an
// export of a pebble fold seeds a memory fold and back.
package export
