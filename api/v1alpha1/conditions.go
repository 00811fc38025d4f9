package v1alpha1

// Condition types of KVFold.status.conditions.
const (
	// ConditionReady: every desired node runs a Live agent.
	ConditionReady = "Ready"
	// ConditionProgressing: a spec change is rolling out or agents are catching up.
	ConditionProgressing = "Progressing"
	// ConditionDegraded: the spec is invalid, agents are Degraded, or cleanup failed.
	ConditionDegraded = "Degraded"
	// ConditionCursorExpired: an agent found its cursor expired and is recovering.
	ConditionCursorExpired = "CursorExpired"
	// ConditionExportHealthy: exports succeed on schedule (absent without spec.export).
	ConditionExportHealthy = "ExportHealthy"
)

// Condition reasons.
const (
	ReasonAllNodesLive      = "AllNodesLive"
	ReasonNodesNotReady     = "NodesNotReady"
	ReasonNoNodes           = "NoMatchingNodes"
	ReasonRollingOut        = "RollingOut"
	ReasonCatchingUp        = "CatchingUp"
	ReasonStable            = "Stable"
	ReasonInvalidSpec       = "InvalidSpec"
	ReasonNodesDegraded     = "NodesDegraded"
	ReasonCleanupFailed     = "CleanupFailed"
	ReasonAsExpected        = "AsExpected"
	ReasonRecovering        = "Recovering"
	ReasonCursorsCurrent    = "CursorsCurrent"
	ReasonExportSucceeded   = "ExportSucceeded"
	ReasonExportFailed      = "ExportFailed"
	ReasonExportOverdue     = "ExportOverdue"
	ReasonExportPending     = "ExportPending"
	ReasonDeleting          = "Deleting"
	ReasonReconcileFailed   = "ReconcileFailed"
	ReasonDaemonSetNotReady = "DaemonSetNotObserved"
)

// Event reasons on a KVFold.
const (
	EventCursorExpired    = "CursorExpired"
	EventResyncStarted    = "ResyncStarted"
	EventSeededFromExport = "SeededFromExport"
	EventExportSucceeded  = "ExportSucceeded"
	EventExportFailed     = "ExportFailed"
	EventDegraded         = "Degraded"
	EventRecovered        = "Recovered"
	EventInvalidSpec      = "InvalidSpec"
	EventCleanupStarted   = "CleanupStarted"
	EventCleanupDone      = "CleanupDone"
)

// Well-known names shared by the controller and the agents.
const (
	// Finalizer holds a KVFold until its node data is handled per spec.dataRetention.
	Finalizer = "slipstream.dev/finalizer"
	// ExportNowAnnotation on a KVFold: the export Lease holder exports as soon as the value
	// changes (e.g. `kubectl annotate kvfold x slipstream.dev/export-now="$(date +%s)"`).
	ExportNowAnnotation = "slipstream.dev/export-now"
	// LabelFold on every child object: the KVFold's name.
	LabelFold = "slipstream.dev/fold"
	// LabelComponent on every child object.
	LabelComponent = "app.kubernetes.io/component"
	// LabelManagedBy on every child object.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "slipstream"
)
