package v1alpha1

// The contract between the operator and the agent in its DaemonSet: what the controller
// passes, where it mounts things, which objects the agent may touch. The agent imports
// these names instead of repeating them.
//
// Besides the `agent run` flags (--nats-url, --bucket, --prefix, --backend, --data-dir,
// --listen, --batch-window, --batch-max, --creds-file, --log-level, --log-format=json), the
// agent Pod gets these environment variables. An agent that sees EnvFoldName runs in
// cluster mode: it reads its KVFold (get/list/watch on that one name), merge-patches only
// the status of KVFoldNodeName(fold, node) (at most once per 10 s unless the phase
// changes; the controller creates the object and grants access to it once it sees the
// agent's Pod, so 404/403 at start means "retry"), may create events, and elects the
// exporter with the Lease named by EnvExportLease (get/update only: the controller
// creates it).
const (
	// EnvFoldName is the KVFold's name.
	EnvFoldName = "SLIPSTREAM_KVFOLD_NAME"
	// EnvFoldNamespace is the KVFold's namespace (the Pod's).
	EnvFoldNamespace = "SLIPSTREAM_KVFOLD_NAMESPACE"
	// EnvNodeName is the node the agent runs on (downward API spec.nodeName).
	EnvNodeName = "SLIPSTREAM_NODE_NAME"
	// EnvPodName is the agent Pod's name (the export Lease holder identity).
	EnvPodName = "SLIPSTREAM_POD_NAME"
	// EnvExportLease names the fold's export Lease (coordination.k8s.io).
	EnvExportLease = "SLIPSTREAM_EXPORT_LEASE"
	// EnvNKeySeedFile, EnvUserFile/EnvPasswordFile and EnvNATSTokenFile name the mounted
	// credential file of spec.nats.nkeySecretRef, userPasswordSecretRef and tokenSecretRef
	// (a .creds file of credentialsSecretRef comes as --creds-file).
	EnvNKeySeedFile  = "SLIPSTREAM_NKEY_SEED_FILE"
	EnvUserFile      = "SLIPSTREAM_NATS_USER_FILE"
	EnvPasswordFile  = "SLIPSTREAM_NATS_PASSWORD_FILE"
	EnvNATSTokenFile = "SLIPSTREAM_NATS_TOKEN_FILE"
	// EnvTLSCAFile, EnvTLSCertFile and EnvTLSKeyFile name the files of spec.nats.tlsSecretRef;
	// tls.crt and tls.key may be absent (server verification only).
	EnvTLSCAFile   = "SLIPSTREAM_TLS_CA_FILE"
	EnvTLSCertFile = "SLIPSTREAM_TLS_CERT_FILE"
	EnvTLSKeyFile  = "SLIPSTREAM_TLS_KEY_FILE"
)

// Paths inside the agent container.
const (
	// AgentDataMount is where the fold's host path (<hostPath>/<namespace>/<name>) is
	// mounted. The fold itself is AgentDataDir inside it, not the mount point: seeding stages
	// an export in a sibling directory (<data-dir>.staging) and swaps the two by rename, and a
	// corrupted store is moved aside to <data-dir>.corrupted-<time>; both must stay on the
	// same writable file system, and a mount point cannot be renamed.
	AgentDataMount = "/var/lib/slipstream"
	// AgentDataDir is the fold's directory: <hostPath>/<namespace>/<name>/fold on the node.
	AgentDataDir = AgentDataMount + "/fold"
	// AgentNATSSecretDir holds the NATS credential Secret's keys.
	AgentNATSSecretDir = "/etc/slipstream/nats"
	// AgentTLSSecretDir holds the NATS TLS Secret's keys.
	AgentTLSSecretDir = "/etc/slipstream/tls"
)

// ExportNowHandledAnnotation on the export Lease: the ExportNowAnnotation value the Lease
// holder last exported for (written by the agents; a new holder does not export again for
// a value handled before it took over).
const ExportNowHandledAnnotation = "slipstream.dev/export-now-handled"

// ExportLeaseName is the name of a fold's export Lease.
func ExportLeaseName(fold string) string { return fold + "-export" }
