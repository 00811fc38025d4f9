package kv

import "time"

// ExactChecks returns how many exact resume checks ran in this process.
func ExactChecks() int64 { return exactChecks.Load() }

// Pauses returns how many watches paused until their fold was ready with the delta
// counted, and with the buffer full.
func Pauses() (counted, full int64) { return pauses.counted.Load(), pauses.full.Load() }

// SetDirectMaxSeqs sets the largest delta fetched by direct gets (0: always use the
// consumer) and returns a function restoring the previous value.
func SetDirectMaxSeqs(n uint64) func() {
	old := directMaxSeqs
	directMaxSeqs = n
	return func() { directMaxSeqs = old }
}

// SetMaxTrackedKeys caps the delta key set D and returns a function restoring the cap.
func SetMaxTrackedKeys(n int) func() {
	old := maxTrackedKeys
	maxTrackedKeys = n
	return func() { maxTrackedKeys = old }
}

// SetConsumerInactive sets the inactivity threshold of watch consumers and returns a
// function restoring it.
func SetConsumerInactive(d time.Duration) func() {
	old := consumerInactive
	consumerInactive = d
	return func() { consumerInactive = old }
}
