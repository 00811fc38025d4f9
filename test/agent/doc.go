// Package agent holds the agent's process-level tests (in its _test files): the built agent
// binary against a real nats-server process (bin/nats-server, else the test binary
// re-executed as an embedded server), killed and restarted the way production kills it.
package agent
