// Package e2e is the end-to-end suite (issue 7): the user's day on a real one-node
// Kubernetes cluster (hack/cluster-up.sh), with the operator installed from charts/slipstream
// by `helm install`, a real nats-server process and a real S3-compatible server (SeaweedFS)
// as the export target, all on 127.0.0.1 (hostNetwork Pods; the cluster routes no ClusterIP).
//
// Run it with `make test-e2e`, which builds and starts what is missing. `go test ./...`
// skips it unless SLIPSTREAM_E2E=1. Knobs (environment):
//
//	SLIPSTREAM_E2E=1                    run the suite (set by make test-e2e)
//	SLIPSTREAM_E2E_ARTIFACTS=DIR        where a failed spec saves logs, events, statuses and
//	                                    agent dumps (default <repo>/_artifacts/e2e)
//	SLIPSTREAM_E2E_CLUSTER_DOWN=auto    tear the cluster down after the suite: "always",
//	                                    "never", or "auto" (default): only when the suite
//	                                    brought it up itself and CI is set, so CI leaves no
//	                                    host changes behind while a developer's cluster stays
//	                                    up between runs (remove it with make cluster-down)
//	SLIPSTREAM_CLUSTER_DIR              the cluster's state directory (hack/cluster/lib.sh)
//	SLIPSTREAM_E2E_MANAGER_IMAGE        manager image (default slipstream/manager:dev)
//	SLIPSTREAM_E2E_AGENT_IMAGE          agent image (default slipstream/agent:dev)
//
// What the suite starts it stops by PID (nats-server, SeaweedFS, a stand-in peer agent);
// what it creates in the cluster (the Helm release, its namespaces, KVFolds) it removes.
package e2e
