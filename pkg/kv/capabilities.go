package kv

import (
	"strconv"
	"strings"
)

// Capabilities describes what the connected server supports.
type Capabilities struct {
	ServerVersion string
	// CAS: compare-and-swap writes (expected last subject sequence).
	CAS bool
	// StreamingWatch: ordered consumers with per-message pending counts.
	StreamingWatch bool
	// PrefixFilter: server-side subject filtering of consumers.
	PrefixFilter bool
	// MultiFilter: consumers with several filter subjects (server >= 2.10).
	MultiFilter bool
	// GlobalOrdering: revisions are stream sequences, totally ordered across keys.
	GlobalOrdering bool
	// LimitMarkers: per-message TTLs and subject delete markers on limit removal
	// (server >= 2.11).
	LimitMarkers bool
}

// Capabilities reports the features of the server the connection is attached to. The
// answer reflects the current server; after a reconnect to another server it may change.
func (c *Conn) Capabilities() Capabilities {
	v := c.nc.ConnectedServerVersion()
	at := func(major, minor, patch int) bool { return versionAtLeast(v, major, minor, patch) }
	return Capabilities{
		ServerVersion:  v,
		CAS:            at(2, 6, 2),
		StreamingWatch: at(2, 2, 0),
		PrefixFilter:   at(2, 2, 0),
		MultiFilter:    at(2, 10, 0),
		GlobalOrdering: true,
		LimitMarkers:   at(2, 11, 0),
	}
}

// versionAtLeast compares a "major.minor.patch[-suffix]" version.
func versionAtLeast(v string, major, minor, patch int) bool {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.SplitN(v, ".", 3)
	want := [3]int{major, minor, patch}
	for i := 0; i < 3; i++ {
		n := 0
		if i < len(parts) {
			var err error
			if n, err = strconv.Atoi(parts[i]); err != nil {
				return false
			}
		}
		if n != want[i] {
			return n > want[i]
		}
	}
	return true
}
