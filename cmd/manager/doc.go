// Command manager is the Slipstream operator: a controller-runtime manager running the
// KVFold reconciler, with leader election, Prometheus metrics, health probes, structured
// logs and graceful shutdown.
//
// Usage:
//
//	manager [--agent-image IMAGE] [--cleanup-image IMAGE] [--leader-elect]
//	        [--metrics-bind-address ADDR] [--health-probe-bind-address ADDR] [--zap-* ...]
//	manager purge-fold-data --path DIR
//
// purge-fold-data is what the cleanup Jobs of `dataRetention: Delete` run on each node: it
// removes one fold directory (and its namespace directory when that is left empty).
package main
