// Package controller holds the KVFold reconciler. For each KVFold it owns the agent
// DaemonSet, the agents' ServiceAccount and least-privilege Role, a node-local Service, the
// export Lease and one KVFoldNode per node that runs an agent; it aggregates the KVFoldNode
// statuses (written by the agents) into KVFold.status, emits events on transitions, and on
// deletion honours spec.dataRetention before it removes its finalizer.
//
// Files by concern: kvfold_controller.go (Reconcile, setup, watches), kvfold_rbac.go
// (ServiceAccount, Role, RoleBinding, Lease), kvfold_daemonset.go (DaemonSet, Service),
// kvfold_nodes.go (KVFoldNode objects), kvfold_status.go (aggregation, conditions, events),
// kvfold_validate.go (checks CEL cannot do), kvfold_delete.go (finalizer and retention).
package controller
