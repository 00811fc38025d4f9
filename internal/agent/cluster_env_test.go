package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// The cluster-mode tests run the agent against a real kube-apiserver and etcd (envtest,
// KUBEBUILDER_ASSETS=./bin/k8s as for the controller suite: `make envtest`) and a real
// embedded nats-server. The tests play the controller: they create the KVFold, the
// KVFoldNode, the export Lease and the agent's Role, as internal/controller does.

var kube struct {
	once  sync.Once
	env   *envtest.Environment
	cfg   *rest.Config
	admin client.Client
	err   error
	users int
	mu    sync.Mutex
}

func TestMain(m *testing.M) {
	code := m.Run()
	if kube.env != nil {
		if err := kube.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}
	os.Exit(code)
}

// kubeEnv starts the shared API server on first use.
func kubeEnv(t *testing.T) client.Client {
	t.Helper()
	kube.once.Do(func() {
		dir := os.Getenv("KUBEBUILDER_ASSETS")
		if dir == "" {
			kube.err = fmt.Errorf("KUBEBUILDER_ASSETS is not set: the cluster-mode tests need a real etcd and kube-apiserver. Run `make envtest` and `make test`, or export KUBEBUILDER_ASSETS=$PWD/bin/k8s")
			return
		}
		for _, b := range []string{"etcd", "kube-apiserver"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				kube.err = fmt.Errorf("KUBEBUILDER_ASSETS=%s has no %s (%w): run `make envtest`", dir, b, err)
				return
			}
		}
		kube.env = &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
			ErrorIfCRDPathMissing: true,
		}
		if kube.cfg, kube.err = kube.env.Start(); kube.err != nil {
			return
		}
		s := runtime.NewScheme()
		utilruntime.Must(clientgoscheme.AddToScheme(s))
		utilruntime.Must(v1alpha1.AddToScheme(s))
		kube.admin, kube.err = client.New(kube.cfg, client.Options{Scheme: s})
	})
	if kube.err != nil {
		t.Fatal(kube.err)
	}
	return kube.admin
}

// kubeFixture is one fold's objects in a fresh namespace.
type kubeFixture struct {
	admin     client.Client
	ns, fold  string
	lease     string
	bucket    string
	natsURL   string
	exportURL string
	schedule  string // --export-schedule ("": none)
}

func newKubeFixture(t *testing.T, natsURL, bucket string) *kubeFixture {
	t.Helper()
	admin := kubeEnv(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "agent-"}}
	if err := admin.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	f := &kubeFixture{admin: admin, ns: ns.Name, fold: "routes", bucket: bucket, natsURL: natsURL}
	f.lease = v1alpha1.ExportLeaseName(f.fold)
	fold := &v1alpha1.KVFold{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.fold},
		Spec:       v1alpha1.KVFoldSpec{NATS: v1alpha1.NATSSpec{URLs: []string{natsURL}}, Bucket: bucket},
	}
	if err := admin.Create(ctx, fold); err != nil {
		t.Fatal(err)
	}
	return f
}

// createNodeObject creates the KVFoldNode of node, as the controller does once it sees
// the node's agent Pod.
func (f *kubeFixture) createNodeObject(t *testing.T, node string) {
	t.Helper()
	obj := &v1alpha1.KVFoldNode{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: v1alpha1.KVFoldNodeName(f.fold, node), Labels: map[string]string{v1alpha1.LabelFold: f.fold}},
		Spec:       v1alpha1.KVFoldNodeSpec{FoldName: f.fold, NodeName: node},
	}
	if err := f.admin.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

// createLease creates the fold's export Lease, empty, as the controller does.
func (f *kubeFixture) createLease(t *testing.T) {
	t.Helper()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.lease}}
	if err := f.admin.Create(context.Background(), l); err != nil {
		t.Fatal(err)
	}
}

// agentUser is an API user of its own (like the agents' ServiceAccount), with no rights
// until grant.
func (f *kubeFixture) agentUser(t *testing.T) (string, *rest.Config) {
	t.Helper()
	kube.mu.Lock()
	kube.users++
	name := fmt.Sprintf("agent-%s-%d", f.ns, kube.users)
	kube.mu.Unlock()
	u, err := kube.env.AddUser(envtest.User{Name: name, Groups: []string{"system:authenticated"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return name, u.Config()
}

// grant gives user the agent's Role, as internal/controller's agentRules does: its KVFold
// (get, list, watch), its KVFoldNodes' status (get, patch), its export Lease (get,
// update, patch).
func (f *kubeFixture) grant(t *testing.T, user string, nodes ...string) {
	t.Helper()
	ctx := context.Background()
	var objs []string
	for _, n := range nodes {
		objs = append(objs, v1alpha1.KVFoldNodeName(f.fold, n))
	}
	g := v1alpha1.GroupVersion.Group
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, GenerateName: "agent-"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{g}, Resources: []string{"kvfolds"}, ResourceNames: []string{f.fold}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{g}, Resources: []string{"kvfoldnodes"}, ResourceNames: objs, Verbs: []string{"get"}},
		{APIGroups: []string{g}, Resources: []string{"kvfoldnodes/status"}, ResourceNames: objs, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{f.lease}, Verbs: []string{"get", "update", "patch"}},
	}}
	if err := f.admin.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, GenerateName: "agent-"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if err := f.admin.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
}

// nodeStatus reads a node's KVFoldNode status (ok false while it does not exist).
func (f *kubeFixture) nodeStatus(t *testing.T, node string) (v1alpha1.KVFoldNode, bool) {
	t.Helper()
	var n v1alpha1.KVFoldNode
	err := f.admin.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: v1alpha1.KVFoldNodeName(f.fold, node)}, &n)
	if client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	return n, err == nil
}

// clusterAgent is an agent in cluster mode started for a test.
type clusterAgent struct {
	a    *Agent
	stop func()
}

// startClusterAgent starts an agent for node, configured as the controller's DaemonSet
// does (flags plus the SLIPSTREAM_* identity environment), with rc as its API access.
func (f *kubeFixture) startClusterAgent(t *testing.T, node string, rc *rest.Config, tune func(*ClusterConfig)) *clusterAgent {
	t.Helper()
	args := []string{"--nats-url", f.natsURL, "--bucket", f.bucket, "--data-dir", t.TempDir(), "--backend", "memory", "--listen", "127.0.0.1:0"}
	if f.exportURL != "" {
		args = append(args, "--export-url", f.exportURL)
	}
	if f.schedule != "" {
		args = append(args, "--export-schedule", f.schedule)
	}
	cfg, err := ParseRun(args, env(map[string]string{
		v1alpha1.EnvFoldName: f.fold, v1alpha1.EnvFoldNamespace: f.ns, v1alpha1.EnvNodeName: node,
		v1alpha1.EnvPodName: f.fold + "-" + node, v1alpha1.EnvExportLease: f.lease,
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cluster.REST = rc
	cfg.Cluster.RetryMax = time.Second
	cfg.Cluster.LeaseDuration, cfg.Cluster.LeaseRenewDeadline, cfg.Cluster.LeaseRetryPeriod = 3*time.Second, 2*time.Second, 300*time.Millisecond
	if tune != nil {
		tune(cfg.Cluster)
	}
	a, err := New(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent %s: Run: %v", node, err)
			}
		})
	}
	t.Cleanup(stop)
	return &clusterAgent{a: a, stop: stop}
}

// testLogger discards the agents' logs unless SLIPSTREAM_TEST_LOG is set (klog, used by
// client-go's leader election, logs through it process-wide).
func testLogger() *slog.Logger {
	if os.Getenv("SLIPSTREAM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// waitFor polls cond until it holds or the deadline passes; the failure names what was
// last seen.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen: %s", what, timeout, seen)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}
