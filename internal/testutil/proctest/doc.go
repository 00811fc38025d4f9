// Package proctest is the process harness of the black-box suites (test/agent,
// test/faults, and the host-side processes of test/e2e): it runs the agent binary and a
// nats-server binary as separate processes on 127.0.0.1, waits for them to be ready, reads
// the agent's status and metrics, and compares a fold with its bucket.
//
// Every process is started by the test and signalled only through its own PID, never by
// name: a test can never stop a process it did not start. Each one's output is kept in
// full, checked for Go crash markers (panic, fatal runtime error) when it ends, and its
// tail is logged when the test fails.
//
// A suite keeps one Harness with its binaries and timeouts: its TestMain locates
// bin/nats-server (NATSServerBin) and runs the tests through Harness.Main, which builds the
// agent first.
package proctest
