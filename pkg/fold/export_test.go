// Package fold: test-only hooks into the loop.
package fold

// DisableResyncDiff turns the resync diff off, so tests can show it is what removes keys
// that vanished while the fold was away.
func DisableResyncDiff(l *Loop) { l.noDiff = true }

// SetMaxResumeDelta sets the largest delta a Resume keeps, returning the previous bound.
func SetMaxResumeDelta(n int) int {
	old := maxResumeDelta
	maxResumeDelta = n
	return old
}
