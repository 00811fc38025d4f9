package export

import (
	"errors"
	"fmt"
)

// ErrInvalidExport matches every error that says an export object is unusable (damaged,
// foreign, or from a future format): a caller looking for a usable export skips it and
// tries the next candidate. The specific sentinels below all match it with errors.Is.
var ErrInvalidExport = errors.New("export: invalid export")

// Sentinel errors of the reader. Each matches ErrInvalidExport as well.
var (
	// ErrTruncated: the export ends before its trailer (an upload cut short, a partial
	// download).
	ErrTruncated = fmt.Errorf("%w: truncated", ErrInvalidExport)
	// ErrChecksum: a frame or the whole-body checksum does not match (bit rot, a damaged
	// copy), or the counts in header, records and trailer disagree.
	ErrChecksum = fmt.Errorf("%w: checksum mismatch", ErrInvalidExport)
	// ErrForeign: not an export of the expected fold: wrong magic (not an export at all),
	// or another bucket or scope than the caller expects.
	ErrForeign = fmt.Errorf("%w: foreign", ErrInvalidExport)
	// ErrUnsupportedVersion: the export was written by a newer format version than this
	// build reads.
	ErrUnsupportedVersion = fmt.Errorf("%w: unsupported format version", ErrInvalidExport)
	// ErrMalformed: checksums match but the content breaks the format's rules (unknown
	// operation, keys out of order or outside the scope, trailing data). Written only by a
	// buggy or hostile writer.
	ErrMalformed = fmt.Errorf("%w: malformed", ErrInvalidExport)
)

// Sentinel errors of the writer, transport, seeding and lease.
var (
	// ErrNotExportable: the fold is not at a consistent applied cursor (never synced,
	// or a resync in progress), or it holds keys outside its scope.
	ErrNotExportable = errors.New("export: fold not exportable")
	// ErrNotFound: no export (or no valid export) exists at the location.
	ErrNotFound = errors.New("export: no export found")
	// ErrExists: an object with the export's name already exists (names are immutable).
	ErrExists = errors.New("export: object already exists")
	// ErrLocation: the export location (URL) is invalid or cannot be opened.
	ErrLocation = errors.New("export: invalid export location")
	// ErrAccessDenied: the object store refused the credentials.
	ErrAccessDenied = errors.New("export: access denied by object store")
	// ErrUnavailable: the object store (or its bucket) cannot be reached or does not exist.
	ErrUnavailable = errors.New("export: object store unavailable")
	// ErrLeaseHeld: another exporter holds the export lease.
	ErrLeaseHeld = errors.New("export: lease held by another exporter")
	// ErrLeaseLost: the lease was taken over or removed while this exporter held it.
	ErrLeaseLost = errors.New("export: lease lost")
)
