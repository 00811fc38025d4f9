// Package agent is the node agent runtime: one process per fold that keeps the fold in sync
// with its NATS JetStream KV bucket and serves it to the applications on the node.
//
// The pieces, one file (or a few) per concern:
//
//   - cli.go, exitcode.go: the command line (run, dump, inspect, verify, export, import) and
//     its exit codes.
//   - config.go, foldfile.go: flags, SLIPSTREAM_* environment variables and KVFold manifests,
//     validated into a Config with one specific error per problem.
//   - agent.go, lifecycle.go: the runtime (open store, connect, run the applied-watch loop,
//     retry with jittered backoff) and the phase state machine
//     (Opening -> Seeding -> CatchingUp -> Live, Degraded) driven by the loop's Observer.
//   - seed.go: with --export-url, an empty store at startup and a cursor expiry (the loop's
//     Reseed hook) seed from the newest export NATS can continue from (pkg/export Seeder).
//   - natsauth.go: NATS credential and TLS files (NKey seed, user/password, token, CA,
//     client certificate), checked at start and read at every connect.
//   - exports.go: scheduled (interval or cron) and on-demand (POST /v1/export) exports, run
//     only while this agent holds the export lease (NATS KV standalone, the fold's Kubernetes
//     Lease in a cluster); failures counted and retried.
//   - cluster.go, cluster_status.go, cluster_lease.go: cluster mode (SLIPSTREAM_KVFOLD_NAME
//     set by the operator): the KVFoldNode status reporter and its write rules, the KVFold
//     watch for the export-now annotation, and the export Lease election.
//   - server.go, api_*.go: the local read API (status, keys, range, watch, health, metrics)
//     with bearer-token auth and request limits.
//   - ring.go: the bounded in-memory ring of applied updates behind /v1/watch.
//   - metrics.go: the slipstream_* Prometheus metrics.
//   - offline.go: dump, inspect and verify over a data directory without NATS.
//   - exportcli.go: export and import of a data directory to and from an export location.
package agent
