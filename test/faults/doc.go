// Package faults holds the fault-injection suite (in its _test files): the built agent binary
// against a real nats-server process (bin/nats-server), with the agent and the server killed
// and restarted, the network between them partitioned through a TCP proxy, the disk under the
// fold filled up, a watch client stalled, and store files and export objects damaged. Every
// scenario ends by comparing the fold with the bucket key by key and by checking that no
// process panicked. `make test-faults` runs it; docs/reliability.md records its counts.
package faults
