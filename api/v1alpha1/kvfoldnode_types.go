package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodePhase is an agent's lifecycle phase.
// +kubebuilder:validation:Enum=Opening;Seeding;CatchingUp;Live;Degraded
type NodePhase string

// The agent lifecycle: Opening -> (Seeding) -> CatchingUp -> Live, and Degraded.
const (
	PhaseOpening    NodePhase = "Opening"
	PhaseSeeding    NodePhase = "Seeding"
	PhaseCatchingUp NodePhase = "CatchingUp"
	PhaseLive       NodePhase = "Live"
	PhaseDegraded   NodePhase = "Degraded"
)

// KVFoldNodeSpec names the fold and the node. The controller creates the object (one per
// KVFold and node that runs an agent) and sets the spec; it never changes.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
type KVFoldNodeSpec struct {
	// foldName: the KVFold in this namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	FoldName string `json:"foldName"`
	// nodeName: the node.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName"`
}

// KVFoldNodeStatus is the fold on one node. The node's agent is its only writer (a merge
// patch of the status subresource, at most one write per 10 s unless the phase changes).
type KVFoldNodeStatus struct {
	// phase of the agent.
	// +optional
	Phase NodePhase `json:"phase,omitempty"`
	// pod: the agent Pod that wrote this status.
	// +optional
	Pod string `json:"pod,omitempty"`
	// cursor: the last stream sequence applied to the fold.
	// +optional
	Cursor int64 `json:"cursor,omitempty"`
	// streamLastSequence: the newest stream sequence the agent has seen.
	// +optional
	StreamLastSequence int64 `json:"streamLastSequence,omitempty"`
	// pending: messages NATS still has for this agent.
	// +optional
	Pending int64 `json:"pending"`
	// lagSeconds: age of the oldest unapplied update.
	// +optional
	LagSeconds float64 `json:"lagSeconds"`
	// keys in the fold.
	// +optional
	Keys int64 `json:"keys,omitempty"`
	// cursorExpired: times the cursor was found expired (since the agent started).
	// +optional
	CursorExpired int64 `json:"cursorExpired,omitempty"`
	// resyncs: full replays caused by cursor expiry (since the agent started).
	// +optional
	Resyncs int64 `json:"resyncs,omitempty"`
	// seededFrom: the export the fold was last seeded from, if any.
	// +optional
	SeededFrom string `json:"seededFrom,omitempty"`
	// lastError: the last error, without credentials; empty when healthy.
	// +optional
	LastError string `json:"lastError,omitempty"`
	// lastTransitionTime: when the phase last changed.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`
	// lastUpdateTime: when the agent last wrote this status.
	// +optional
	LastUpdateTime *metav1.Time `json:"lastUpdateTime,omitempty"`
	// lastExport: the newest export this node's agent made.
	// +optional
	LastExport *ExportRecord `json:"lastExport,omitempty"`
	// lastExportAttempt: when this node's agent last tried to export.
	// +optional
	LastExportAttempt *metav1.Time `json:"lastExportAttempt,omitempty"`
	// lastExportError: why the last export attempt failed; empty when it succeeded.
	// +optional
	LastExportError string `json:"lastExportError,omitempty"`
}

// KVFoldNode is the status of one KVFold on one node, owned by the KVFold.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kvfn,categories=slipstream
// +kubebuilder:printcolumn:name="Fold",type=string,JSONPath=`.spec.foldName`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Cursor",type=integer,JSONPath=`.status.cursor`
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=`.status.pending`
// +kubebuilder:printcolumn:name="Lag",type=number,JSONPath=`.status.lagSeconds`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KVFoldNode struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +required
	Spec KVFoldNodeSpec `json:"spec"`
	// +optional
	Status KVFoldNodeStatus `json:"status,omitempty"`
}

// KVFoldNodeList is a list of KVFoldNodes.
// +kubebuilder:object:root=true
type KVFoldNodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KVFoldNode `json:"items"`
}

// KVFoldNodeName is the name of the KVFoldNode of fold on node: "<fold>.<node>", or, when
// that is longer than a name may be, a prefix of it and a hash of the whole. Agents find
// their object with it (fold from their KVFold, node from the downward API).
func KVFoldNodeName(fold, node string) string {
	const maxName = 253
	name := fold + "." + node
	if len(name) <= maxName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:8])
	prefix := name[:maxName-len(suffix)]
	for len(prefix) > 0 && (prefix[len(prefix)-1] == '.' || prefix[len(prefix)-1] == '-') {
		prefix = prefix[:len(prefix)-1]
	}
	return prefix + suffix
}
