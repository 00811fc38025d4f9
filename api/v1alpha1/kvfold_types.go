package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackendType names a fold store implementation.
// +kubebuilder:validation:Enum=pebble;memory
type BackendType string

const (
	// BackendPebble is the durable on-disk store (the default).
	BackendPebble BackendType = "pebble"
	// BackendMemory keeps the fold in memory only: every restart is a full sync.
	BackendMemory BackendType = "memory"
)

// DataRetentionPolicy says what happens to the folds on the nodes when the KVFold is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DataRetentionPolicy string

const (
	// RetainData leaves <hostPath>/<namespace>/<name> on every node (the default).
	RetainData DataRetentionPolicy = "Retain"
	// DeleteData removes <hostPath>/<namespace>/<name> from every node before the KVFold goes.
	DeleteData DataRetentionPolicy = "Delete"
)

// Defaults the API server fills in (see the markers) and the controller relies on.
const (
	DefaultHostPath       = "/var/lib/slipstream"
	DefaultAgentPort      = 7070
	DefaultExportSchedule = "*/15 * * * *"
	DefaultExportRetain   = 5
)

// SecretKeyReference names one key of a Secret in the KVFold's namespace.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// key in the Secret's data; the field that holds this reference documents the default.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// SecretReference names a Secret in the KVFold's namespace.
type SecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// UserPasswordSecretReference names a Secret holding a NATS user name and password.
type UserPasswordSecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// usernameKey: the key holding the user name; default username.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	UsernameKey string `json:"usernameKey,omitempty"`
	// passwordKey: the key holding the password; default password.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	PasswordKey string `json:"passwordKey,omitempty"`
}

// TLSSecretReference names a Secret with the CA that verifies the NATS servers and
// optionally a client certificate and key.
type TLSSecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// caKey: the key holding the PEM CA bundle; default ca.crt.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	CAKey string `json:"caKey,omitempty"`
	// certKey: the key holding the PEM client certificate; default tls.crt (optional in the
	// Secret: without it the agent only verifies the server).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	CertKey string `json:"certKey,omitempty"`
	// privateKeyKey: the key holding the PEM client key; default tls.key.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	PrivateKeyKey string `json:"privateKeyKey,omitempty"`
}

// AccountReference names a NACK Account (jetstream.nats.io) in the KVFold's namespace.
type AccountReference struct {
	// name of the Account.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// NATSSpec says how the agents reach NATS. Credentials come from Secrets only, never from
// the spec, so that nothing secret shows in `kubectl get -o yaml`, events or logs.
// +kubebuilder:validation:XValidation:rule="(has(self.credentialsSecretRef) ? 1 : 0) + (has(self.nkeySecretRef) ? 1 : 0) + (has(self.userPasswordSecretRef) ? 1 : 0) + (has(self.tokenSecretRef) ? 1 : 0) <= 1",message="nats: set at most one of credentialsSecretRef, nkeySecretRef, userPasswordSecretRef and tokenSecretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.accountRef) || !(has(self.credentialsSecretRef) || has(self.nkeySecretRef) || has(self.userPasswordSecretRef) || has(self.tokenSecretRef) || has(self.tlsSecretRef))",message="nats.accountRef takes credentials and TLS from the NACK Account: do not combine it with credential or TLS Secret references"
type NATSSpec struct {
	// urls of the NATS servers: nats://, tls://, ws:// or wss://HOST[:PORT], without
	// credentials.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.all(u, u.matches('^(nats|tls|ws|wss)://[^/@ ,]+'))",message="nats.urls: each URL must be nats://, tls://, ws:// or wss:// followed by a host"
	// +kubebuilder:validation:XValidation:rule="self.all(u, !u.contains(',') && !u.contains(' '))",message="nats.urls: one URL per item, without commas or spaces"
	// +kubebuilder:validation:XValidation:rule="self.all(u, !u.matches('^[a-z]+://[^/]*@'))",message="nats.urls must not embed credentials: use credentialsSecretRef, nkeySecretRef, userPasswordSecretRef or tokenSecretRef"
	URLs []string `json:"urls"`
	// credentialsSecretRef: a NATS .creds file (JWT + NKey seed); key defaults to user.creds.
	// +optional
	CredentialsSecretRef *SecretKeyReference `json:"credentialsSecretRef,omitempty"`
	// nkeySecretRef: an NKey seed; key defaults to nkey.seed.
	// +optional
	NKeySecretRef *SecretKeyReference `json:"nkeySecretRef,omitempty"`
	// userPasswordSecretRef: a Secret with a user name and password (keys username and
	// password unless usernameKey/passwordKey say otherwise).
	// +optional
	UserPasswordSecretRef *UserPasswordSecretReference `json:"userPasswordSecretRef,omitempty"`
	// tokenSecretRef: an auth token; key defaults to token.
	// +optional
	TokenSecretRef *SecretKeyReference `json:"tokenSecretRef,omitempty"`
	// tlsSecretRef: a Secret with ca.crt (trust) and optionally tls.crt and tls.key (client
	// certificate), as cert-manager writes them; caKey/certKey/privateKeyKey rename them.
	// +optional
	TLSSecretRef *TLSSecretReference `json:"tlsSecretRef,omitempty"`
	// accountRef: take credentials and TLS from a NACK Account (jetstream.nats.io/v1beta2,
	// its spec.creds, spec.user, spec.token and spec.tls Secrets) instead. The agents still
	// connect to spec.nats.urls. The controller re-reads the Account on every resync.
	// +optional
	AccountRef *AccountReference `json:"accountRef,omitempty"`
}

// ScopeSpec limits a fold to keys under some prefixes. Omit it to fold the whole bucket.
type ScopeSpec struct {
	// prefixes: whole key tokens, each ending in "." (e.g. "route." or "route.eu."); none may
	// start with another.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.all(p, p.matches('^[-/_=a-zA-Z0-9]+([.][-/_=a-zA-Z0-9]+)*[.]$'))",message="scope.prefixes: each prefix must be whole key tokens (letters, digits, - _ / =) each ending in '.', e.g. 'route.' or 'route.eu.'"
	// +kubebuilder:validation:XValidation:rule="self.all(p, self.filter(q, q.startsWith(p)).size() == 1)",message="scope.prefixes must not overlap or repeat: no prefix may start with another (e.g. 'route.' and 'route.eu.'); keep the shorter one"
	Prefixes []string `json:"prefixes"`
}

// BackendSpec selects and tunes the fold store. Its type is fixed once the fold exists: the
// stores on the nodes are in that format.
// +kubebuilder:validation:XValidation:rule="self.type == oldSelf.type",message="backend.type is immutable: the folds on the nodes are stored in that format; create a new KVFold for another backend"
// +kubebuilder:validation:XValidation:rule="self.type == 'pebble' || !has(self.pebble)",message="backend.pebble is only valid with type pebble"
type BackendSpec struct {
	// type: pebble (durable, the default) or memory.
	// +optional
	// +kubebuilder:default=pebble
	Type BackendType `json:"type,omitempty"`
	// pebble tuning.
	// +optional
	Pebble *PebbleSpec `json:"pebble,omitempty"`
}

// PebbleSpec tunes the pebble backend.
type PebbleSpec struct {
	// sync: fsync every applied batch (default false: the fold is a cache of NATS, a lost
	// tail is re-fetched).
	// +optional
	Sync *bool `json:"sync,omitempty"`
	// cacheSize of the block cache (default: the agent's).
	// +optional
	CacheSize *resource.Quantity `json:"cacheSize,omitempty"`
}

// StorageSpec says where folds live on the nodes.
// +kubebuilder:validation:XValidation:rule="self.hostPath == oldSelf.hostPath",message="storage.hostPath is immutable: the folds on the nodes are there; create a new KVFold for another path"
type StorageSpec struct {
	// hostPath root; the fold of a KVFold lives at <hostPath>/<namespace>/<name> on each node.
	// +optional
	// +kubebuilder:default="/var/lib/slipstream"
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/') && self != '/' && !self.contains('//') && !self.contains('/../') && !self.endsWith('/..') && !self.contains('/./') && !self.endsWith('/.')",message="storage.hostPath must be a clean absolute path other than /"
	HostPath string `json:"hostPath,omitempty"`
}

// BatchSpec tunes batching: a batch is applied when its window closes or it is full.
type BatchSpec struct {
	// window, from the first update of a batch to its apply (1us..10s; agent default 10ms).
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1us') && duration(self) <= duration('10s')",message="batch.window must be a duration from 1us to 10s, e.g. 10ms"
	Window *metav1.Duration `json:"window,omitempty"`
	// maxUpdates in one batch (1..100000; agent default 100).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxUpdates *int32 `json:"maxUpdates,omitempty"`
}

// ExportSpec schedules exports of the fold to object storage: one agent per fold (the
// holder of the fold's export Lease) exports on the schedule; new nodes and nodes whose
// cursor expired seed from the newest export.
type ExportSpec struct {
	// url of the export location: s3://, gs://, azblob:// or file://, without credentials.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^(s3|gs|azblob|file)://.+')",message="export.url must be an s3://, gs://, azblob:// or file:// URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-z0-9]+://[^/?]*@')",message="export.url must not embed credentials: use export.credentialsSecretRef"
	URL string `json:"url"`
	// credentialsSecretRef: a Secret whose keys become the agent's environment (e.g.
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS_JSON,
	// AZURE_STORAGE_KEY), as gocloud.dev/blob reads them.
	// +optional
	CredentialsSecretRef *SecretReference `json:"credentialsSecretRef,omitempty"`
	// schedule in cron syntax (5 fields, or @hourly and the like; checked by the controller).
	// +optional
	// +kubebuilder:default="*/15 * * * *"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Schedule string `json:"schedule,omitempty"`
	// retain this many newest exports; older ones are deleted.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Retain *int32 `json:"retain,omitempty"`
}

// PlacementSpec selects the nodes that keep a fold, as for any DaemonSet.
type PlacementSpec struct {
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
}

// LogLevel of the agent.
// +kubebuilder:validation:Enum=debug;info;warn;error
type LogLevel string

// AgentSpec shapes the agent Pods.
type AgentSpec struct {
	// image of the agent; empty means the manager's default (its --agent-image flag).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image,omitempty"`
	// imagePullPolicy of the agent container.
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
	// imagePullSecrets of the agent Pods.
	// +optional
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// port of the agent's read API (also /healthz, /readyz, /metrics).
	// +optional
	// +kubebuilder:default=7070
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
	// hostNetwork runs the agent in the node's network namespace; the read API then listens
	// on 127.0.0.1:<port> of the node.
	// +optional
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// resources of the agent container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// securityContext of the agent container; default: no privilege escalation, all
	// capabilities dropped, read-only root file system, RuntimeDefault seccomp.
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
	// podSecurityContext of the agent Pods.
	// +optional
	PodSecurityContext *corev1.PodSecurityContext `json:"podSecurityContext,omitempty"`
	// priorityClassName of the agent Pods.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// logLevel of the agent: debug, info (default), warn or error.
	// +optional
	LogLevel LogLevel `json:"logLevel,omitempty"`
}

// KVFoldSpec is the desired fold: which bucket, from where, onto which nodes, how.
// +kubebuilder:validation:XValidation:rule="has(self.scope) == has(oldSelf.scope) && (!has(self.scope) || self.scope.prefixes == oldSelf.scope.prefixes)",message="scope is immutable: the folds on the nodes hold exactly that scope; create a new KVFold for another scope"
type KVFoldSpec struct {
	// nats: servers and credentials.
	// +required
	NATS NATSSpec `json:"nats"`
	// bucket: the JetStream KV bucket to fold.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-_a-zA-Z0-9]+$')",message="bucket must be a NATS KV bucket name: letters, digits, - and _ only"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="bucket is immutable: create a new KVFold for another bucket"
	Bucket string `json:"bucket"`
	// scope: fold only keys under these prefixes; omit for the whole bucket.
	// +optional
	Scope *ScopeSpec `json:"scope,omitempty"`
	// backend of the fold store.
	// +optional
	// +kubebuilder:default={type: pebble}
	Backend BackendSpec `json:"backend,omitempty"`
	// storage on the nodes.
	// +optional
	// +kubebuilder:default={hostPath: "/var/lib/slipstream"}
	Storage StorageSpec `json:"storage,omitempty"`
	// batch tuning.
	// +optional
	Batch BatchSpec `json:"batch,omitempty"`
	// export to object storage; omit for no exports.
	// +optional
	Export *ExportSpec `json:"export,omitempty"`
	// placement of the agents.
	// +optional
	Placement PlacementSpec `json:"placement,omitempty"`
	// agent Pods.
	// +optional
	// +kubebuilder:default={port: 7070}
	Agent AgentSpec `json:"agent,omitempty"`
	// dataRetention: what happens to the folds on the nodes when the KVFold is deleted.
	// Retain (default) leaves them; Delete removes them before the KVFold goes.
	// +optional
	// +kubebuilder:default=Retain
	DataRetention DataRetentionPolicy `json:"dataRetention,omitempty"`
}

// NodeCounts counts agent Pods, from the DaemonSet. The fields are optional so that a
// merge patch may carry only the counts that changed.
type NodeCounts struct {
	// desired: nodes that should run an agent.
	// +optional
	Desired int32 `json:"desired"`
	// ready: agents that are Live (their readyz passes).
	// +optional
	Ready int32 `json:"ready"`
	// updated: agents running the current spec.
	// +optional
	Updated int32 `json:"updated"`
}

// NodeLag is one entry of the top laggards.
type NodeLag struct {
	Node       string    `json:"node"`
	Phase      NodePhase `json:"phase,omitempty"`
	Cursor     int64     `json:"cursor"`
	Pending    int64     `json:"pending"`
	LagSeconds float64   `json:"lagSeconds"`
}

// ExportRecord describes one export.
type ExportRecord struct {
	// time the export became discoverable.
	Time metav1.Time `json:"time"`
	// cursor: the stream sequence the export covers.
	Cursor int64 `json:"cursor"`
	// url of the export object.
	URL string `json:"url,omitempty"`
	// keys in the export.
	Keys int64 `json:"keys"`
	// bytes of the export object.
	Bytes int64 `json:"bytes"`
	// node whose agent made it.
	// +optional
	Node string `json:"node,omitempty"`
}

// KVFoldStatus is the fold across all its nodes.
type KVFoldStatus struct {
	// observedGeneration: the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// nodes running the agent.
	// +optional
	Nodes NodeCounts `json:"nodes"`
	// nodeSummary: "ready/desired", for the Nodes column.
	// +optional
	NodeSummary string `json:"nodeSummary,omitempty"`
	// streamLastSequence: the newest stream sequence any agent has seen.
	// +optional
	StreamLastSequence int64 `json:"streamLastSequence,omitempty"`
	// minCursor: the oldest applied cursor across nodes.
	// +optional
	MinCursor int64 `json:"minCursor,omitempty"`
	// maxPending: the most messages pending on any node.
	// +optional
	MaxPending int64 `json:"maxPending"`
	// maxLagSeconds: the largest lag on any node.
	// +optional
	MaxLagSeconds float64 `json:"maxLagSeconds"`
	// topLaggards: up to five nodes with the largest lag.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	TopLaggards []NodeLag `json:"topLaggards,omitempty"`
	// lastExport: the newest successful export.
	// +optional
	LastExport *ExportRecord `json:"lastExport,omitempty"`
	// conditions: Ready, Progressing, Degraded, CursorExpired, ExportHealthy.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// KVFold keeps a local copy ("fold") of a NATS JetStream KV bucket on every matching node.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kvf,categories=slipstream
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Nodes",type=string,JSONPath=`.status.nodeSummary`
// +kubebuilder:printcolumn:name="Max lag",type=number,JSONPath=`.status.maxLagSeconds`
// +kubebuilder:printcolumn:name="Last export",type=date,JSONPath=`.status.lastExport.time`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 52",message="metadata.name must be at most 52 characters: it names the agent DaemonSet, whose Pod names add a suffix"
type KVFold struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +required
	Spec KVFoldSpec `json:"spec"`
	// +optional
	Status KVFoldStatus `json:"status,omitempty"`
}

// KVFoldList is a list of KVFolds.
// +kubebuilder:object:root=true
type KVFoldList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KVFold `json:"items"`
}
