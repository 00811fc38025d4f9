// Package v1alpha1 holds the slipstream.dev/v1alpha1 API: KVFold, the user's request for a
// fold of one NATS JetStream KV bucket on every matching node, and KVFoldNode, the status of
// that fold on one node, written by the node's agent and aggregated by the controller.
//
// Validation lives on the types as OpenAPI and CEL markers (checked by the API server at
// admission); what CEL cannot check (cron syntax, Secret existence) is reported by the
// controller as a Degraded condition with reason InvalidSpec.
//
// +kubebuilder:object:generate=true
// +groupName=slipstream.dev
package v1alpha1
