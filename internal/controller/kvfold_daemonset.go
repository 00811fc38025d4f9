package controller

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// Paths inside the agent container and the agent's environment: the contract with the
// agent lives in api/v1alpha1 (agent_contract.go).
const (
	dataDir       = v1alpha1.AgentDataDir
	natsSecretDir = v1alpha1.AgentNATSSecretDir
	tlsSecretDir  = v1alpha1.AgentTLSSecretDir

	// TerminationGracePeriod: the agent drains its batch and persists on SIGTERM well
	// inside 30 s; 60 s leaves room for a slow disk.
	TerminationGracePeriod = 60

	EnvFoldName      = v1alpha1.EnvFoldName
	EnvFoldNamespace = v1alpha1.EnvFoldNamespace
	EnvNodeName      = v1alpha1.EnvNodeName
	EnvPodName       = v1alpha1.EnvPodName
	EnvExportLease   = v1alpha1.EnvExportLease
	EnvNKeySeedFile  = v1alpha1.EnvNKeySeedFile
	EnvUserFile      = v1alpha1.EnvUserFile
	EnvPasswordFile  = v1alpha1.EnvPasswordFile
	EnvNATSTokenFile = v1alpha1.EnvNATSTokenFile
	EnvTLSCAFile     = v1alpha1.EnvTLSCAFile
	EnvTLSCertFile   = v1alpha1.EnvTLSCertFile
	EnvTLSKeyFile    = v1alpha1.EnvTLSKeyFile
)

// foldHostPath is the fold's directory on a node, <hostPath>/<namespace>/<name>, mounted at
// AgentDataMount (the store is its fold/ subdirectory, with seeding's staging beside it).
func foldHostPath(fold *v1alpha1.KVFold) string {
	root := fold.Spec.Storage.HostPath
	if root == "" {
		root = v1alpha1.DefaultHostPath
	}
	return path.Join(root, fold.Namespace, fold.Name)
}

func agentPort(fold *v1alpha1.KVFold) int32 {
	if fold.Spec.Agent.Port == 0 {
		return v1alpha1.DefaultAgentPort
	}
	return fold.Spec.Agent.Port
}

func keyOr(key, def string) string {
	if key == "" {
		return def
	}
	return key
}

// agentArgs are the `agent run` flags for a fold. Identity (fold, node, Pod, export Lease)
// and the NATS credential files come as environment, which puts the agent in its
// in-cluster mode (api/v1alpha1/agent_contract.go).
func agentArgs(fold *v1alpha1.KVFold) []string {
	s := fold.Spec
	// --nats-url takes one comma-separated list (the CRD keeps commas out of URLs).
	args := []string{"run", "--nats-url=" + strings.Join(s.NATS.URLs, ","), "--bucket=" + s.Bucket}
	if s.Scope != nil {
		for _, p := range s.Scope.Prefixes {
			args = append(args, "--prefix="+p)
		}
	}
	backend := s.Backend.Type
	if backend == "" {
		backend = v1alpha1.BackendPebble
	}
	args = append(args, "--backend="+string(backend), "--data-dir="+dataDir,
		fmt.Sprintf("--listen=0.0.0.0:%d", agentPort(fold)), "--log-format=json")
	if p := s.Backend.Pebble; p != nil && backend == v1alpha1.BackendPebble {
		if p.Sync != nil {
			args = append(args, "--pebble-sync="+strconv.FormatBool(*p.Sync))
		}
		if p.CacheSize != nil {
			args = append(args, "--pebble-cache-size="+strconv.FormatInt(p.CacheSize.Value(), 10))
		}
	}
	if s.Batch.Window != nil {
		args = append(args, "--batch-window="+s.Batch.Window.Duration.String())
	}
	if s.Batch.MaxUpdates != nil {
		args = append(args, "--batch-max="+strconv.Itoa(int(*s.Batch.MaxUpdates)))
	}
	if c := s.NATS.CredentialsSecretRef; c != nil {
		args = append(args, "--creds-file="+path.Join(natsSecretDir, keyOr(c.Key, "user.creds")))
	}
	if s.Agent.LogLevel != "" {
		args = append(args, "--log-level="+string(s.Agent.LogLevel))
	}
	// Exports: the credentials come as environment from spec.export.credentialsSecretRef
	// (envFrom); the agent holding the fold's export Lease exports on the schedule.
	if e := s.Export; e != nil {
		schedule := e.Schedule
		if schedule == "" {
			schedule = v1alpha1.DefaultExportSchedule
		}
		retain := int32(v1alpha1.DefaultExportRetain)
		if e.Retain != nil {
			retain = *e.Retain
		}
		args = append(args, "--export-url="+e.URL, "--export-schedule="+schedule,
			"--export-retain="+strconv.Itoa(int(retain)))
	}
	return args
}

func fieldEnv(name, fieldPath string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: fieldPath}}}
}

// agentEnvAndVolumes mounts the referenced Secrets and names their files in the environment.
func agentEnvAndVolumes(fold *v1alpha1.KVFold) ([]corev1.EnvVar, []corev1.EnvFromSource, []corev1.Volume, []corev1.VolumeMount) {
	env := []corev1.EnvVar{
		{Name: EnvFoldName, Value: fold.Name},
		fieldEnv(EnvFoldNamespace, "metadata.namespace"),
		fieldEnv(EnvNodeName, "spec.nodeName"),
		fieldEnv(EnvPodName, "metadata.name"),
		{Name: EnvExportLease, Value: leaseName(fold)},
	}
	vols := []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: foldHostPath(fold), Type: ptr.To(corev1.HostPathDirectoryOrCreate),
		}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	mounts := []corev1.VolumeMount{{Name: "data", MountPath: v1alpha1.AgentDataMount}, {Name: "tmp", MountPath: "/tmp"}}
	secretVol := func(name, secret string) {
		vols = append(vols, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secret, DefaultMode: ptr.To[int32](0o400),
		}}})
	}
	n := fold.Spec.NATS
	var natsSecret string
	switch {
	case n.CredentialsSecretRef != nil:
		natsSecret = n.CredentialsSecretRef.Name
	case n.NKeySecretRef != nil:
		natsSecret = n.NKeySecretRef.Name
		env = append(env, corev1.EnvVar{Name: EnvNKeySeedFile, Value: path.Join(natsSecretDir, keyOr(n.NKeySecretRef.Key, "nkey.seed"))})
	case n.UserPasswordSecretRef != nil:
		natsSecret = n.UserPasswordSecretRef.Name
		up := n.UserPasswordSecretRef
		env = append(env, corev1.EnvVar{Name: EnvUserFile, Value: path.Join(natsSecretDir, keyOr(up.UsernameKey, "username"))},
			corev1.EnvVar{Name: EnvPasswordFile, Value: path.Join(natsSecretDir, keyOr(up.PasswordKey, "password"))})
	case n.TokenSecretRef != nil:
		natsSecret = n.TokenSecretRef.Name
		env = append(env, corev1.EnvVar{Name: EnvNATSTokenFile, Value: path.Join(natsSecretDir, keyOr(n.TokenSecretRef.Key, "token"))})
	}
	if natsSecret != "" {
		secretVol("nats-credentials", natsSecret)
		mounts = append(mounts, corev1.VolumeMount{Name: "nats-credentials", MountPath: natsSecretDir, ReadOnly: true})
	}
	if n.TLSSecretRef != nil {
		secretVol("nats-tls", n.TLSSecretRef.Name)
		mounts = append(mounts, corev1.VolumeMount{Name: "nats-tls", MountPath: tlsSecretDir, ReadOnly: true})
		t := n.TLSSecretRef
		env = append(env, corev1.EnvVar{Name: EnvTLSCAFile, Value: path.Join(tlsSecretDir, keyOr(t.CAKey, "ca.crt"))},
			corev1.EnvVar{Name: EnvTLSCertFile, Value: path.Join(tlsSecretDir, keyOr(t.CertKey, "tls.crt"))},
			corev1.EnvVar{Name: EnvTLSKeyFile, Value: path.Join(tlsSecretDir, keyOr(t.PrivateKeyKey, "tls.key"))})
	}
	var envFrom []corev1.EnvFromSource
	if e := fold.Spec.Export; e != nil && e.CredentialsSecretRef != nil {
		envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: e.CredentialsSecretRef.Name},
		}})
	}
	return env, envFrom, vols, mounts
}

// defaultSecurityContext: the agent needs no privileges. It runs as the image's user so it
// can write the root-owned DirectoryOrCreate host path; override with agent.securityContext.
func defaultSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// desiredPodTemplate is the agent Pod for a fold.
func (r *KVFoldReconciler) desiredPodTemplate(fold *v1alpha1.KVFold) corev1.PodTemplateSpec {
	a := fold.Spec.Agent
	image, pull := a.Image, a.ImagePullPolicy
	if image == "" {
		image = r.AgentImage
		if pull == "" {
			pull = r.AgentImagePullPolicy
		}
	}
	env, envFrom, vols, mounts := agentEnvAndVolumes(fold)
	sc := a.SecurityContext
	if sc == nil {
		sc = defaultSecurityContext()
	}
	probe := func(p string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: p, Port: intstr.FromString("api")}},
			PeriodSeconds:    period,
			FailureThreshold: failures,
			TimeoutSeconds:   2,
		}
	}
	c := corev1.Container{
		Name:            componentAgent,
		Image:           image,
		ImagePullPolicy: pull,
		Args:            agentArgs(fold),
		Env:             env,
		EnvFrom:         envFrom,
		Ports:           []corev1.ContainerPort{{Name: "api", ContainerPort: agentPort(fold), Protocol: corev1.ProtocolTCP}},
		// readyz passes only when the agent is Live.
		ReadinessProbe:  probe("/readyz", 5, 3),
		LivenessProbe:   probe("/healthz", 10, 6),
		VolumeMounts:    mounts,
		SecurityContext: sc,
	}
	if a.Resources != nil {
		c.Resources = *a.Resources
	}
	spec := corev1.PodSpec{
		ServiceAccountName:            agentName(fold),
		Containers:                    []corev1.Container{c},
		Volumes:                       vols,
		TerminationGracePeriodSeconds: ptr.To[int64](TerminationGracePeriod),
		HostNetwork:                   a.HostNetwork,
		NodeSelector:                  fold.Spec.Placement.NodeSelector,
		Tolerations:                   fold.Spec.Placement.Tolerations,
		Affinity:                      fold.Spec.Placement.Affinity,
		PriorityClassName:             a.PriorityClassName,
		ImagePullSecrets:              a.ImagePullSecrets,
		SecurityContext:               a.PodSecurityContext,
	}
	if a.HostNetwork {
		spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: childLabels(fold, componentAgent)},
		Spec:       spec,
	}
}

// reconcileDaemonSet ensures the agent DaemonSet. Rolling updates take one node at a time
// with no surge: two agents never share a node's store.
func (r *KVFoldReconciler) reconcileDaemonSet(ctx context.Context, fold *v1alpha1.KVFold) error {
	tmpl := r.desiredPodTemplate(fold)
	strategy := appsv1.DaemonSetUpdateStrategy{
		Type: appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			MaxSurge:       ptr.To(intstr.FromInt32(0)),
		},
	}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: fold.Name, Namespace: fold.Namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, ds, func() error {
		if upToDate(ds, hashOf([]any{tmpl, strategy})) {
			return nil
		}
		ds.Labels = childLabels(fold, componentAgent)
		if ds.CreationTimestamp.IsZero() {
			ds.Spec.Selector = &metav1.LabelSelector{MatchLabels: agentSelector(fold)}
		}
		ds.Spec.Template = tmpl
		ds.Spec.UpdateStrategy = strategy
		ds.Spec.RevisionHistoryLimit = ptr.To[int32](5)
		return controllerutil.SetControllerReference(fold, ds, r.Scheme)
	})
	return err
}

// reconcileService ensures the node-local Service: internalTrafficPolicy Local sends an
// app's request to the agent on the app's own node.
func (r *KVFoldReconciler) reconcileService(ctx context.Context, fold *v1alpha1.KVFold) error {
	port := agentPort(fold)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fold.Name, Namespace: fold.Namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
		if upToDate(svc, hashOf(port)) {
			return nil
		}
		svc.Labels = childLabels(fold, componentAgent)
		svc.Spec.Selector = agentSelector(fold)
		svc.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
		svc.Spec.Ports = []corev1.ServicePort{{
			Name: "api", Port: port, TargetPort: intstr.FromString("api"), Protocol: corev1.ProtocolTCP,
		}}
		return controllerutil.SetControllerReference(fold, svc, r.Scheme)
	})
	return err
}
