package kv

// ExactChecks returns how many exact resume checks ran in this process.
func ExactChecks() int64 { return exactChecks.Load() }
