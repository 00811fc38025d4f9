// Package faults holds the fault-injection suite (in its _test files): the built agent binary
// against a real nats-server process (bin/nats-server), with the agent and the server killed
// and restarted, the network between them partitioned through a TCP proxy, the disk under the
// fold filled up, a watch client stalled, and store files and export objects damaged. Every
// scenario ends by comparing the fold with the bucket key by key and by checking that no
// process panicked. docs/reliability.md records its counts.
//
// `make test-faults` (part of `make test`) runs it; plain `go test ./...` does not, unless
// SLIPSTREAM_FAULTS=1. Knobs (environment):
//
//	SLIPSTREAM_FAULTS=1   run the suite (set by make test-faults)
//	FAULT_CYCLES=N        agent kills per backend (default 100); NATS restarts are
//	                      max(20, N/5), partition rounds N/100, repaired corrupt memory
//	                      logs every max(1, 400/N)th boundary
//	FAULT_PARTITIONS=a,b  only these partitions (drop, blackhole, half-open-up-only,
//	                      half-open-down-only, half-open-dead-peer)
//	FAULT_LOG_LEVEL=debug the agents' log level (default info)
//
// It needs bin/nats-server (make nats-server) and root for the tmpfs of the disk-full
// scenario. Each scenario logs one line `FAULTS <scenario> key=value ...` with its counts.
package faults
