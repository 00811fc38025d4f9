package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// The suite runs the reconciler in a real manager against a real kube-apiserver and etcd
// (envtest). There is no kubelet, DaemonSet or Job controller: the tests play them (create
// Nodes and agent Pods, set DaemonSet and Job status) and play the agents (patch
// KVFoldNode status).

const (
	testAgentImage   = "registry.test/slipstream-agent:test"
	testCleanupImage = "registry.test/slipstream-manager:test"
)

var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	// mgrClient is the manager's cached client, for timing a reconcile pass as it runs.
	mgrClient client.Client
	scheme    = runtime.NewScheme()
	cancelMgr context.CancelFunc
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	SetDefaultConsistentlyDuration(time.Second)
	RunSpecs(t, "Controller Suite (envtest)")
}

// checkAssets fails with a clear message when the envtest binaries are not there: without
// this, envtest would try to download them (impossible here) and fail obscurely.
func checkAssets() {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		Fail("KUBEBUILDER_ASSETS is not set: the controller tests need a real etcd and kube-apiserver. " +
			"Run `make envtest` (builds them into ./bin/k8s) and `make test`, or export KUBEBUILDER_ASSETS=$PWD/bin/k8s")
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			Fail(fmt.Sprintf("KUBEBUILDER_ASSETS=%s has no %s (%v): run `make envtest`", dir, b, err))
		}
	}
}

var _ = BeforeSuite(func() {
	checkAssets()
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	testEnv = &envtest.Environment{
		// testdata/crds: NACK's Account kind, for spec.nats.accountRef.
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases"), filepath.Join("testdata", "crds")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(),
	})
	Expect(err).NotTo(HaveOccurred())
	mgrClient = mgr.GetClient()
	var ctx context.Context
	ctx, cancelMgr = context.WithCancel(context.Background())
	r := &KVFoldReconciler{
		Client: mgr.GetClient(), Scheme: mgr.GetScheme(),
		Recorder:   mgr.GetEventRecorder("slipstream-manager"),
		AgentImage: testAgentImage, CleanupImage: testCleanupImage,
	}
	Expect(r.SetupWithManager(ctx, mgr)).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancelMgr != nil {
		cancelMgr()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// newNamespace makes a namespace for one test (there is no namespace controller to clean
// it up; the names are unique).
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kvf-"}}
	Expect(k8sClient.Create(context.Background(), ns)).To(Succeed())
	return ns.Name
}

// validFold is a minimal valid KVFold; tests change what they need.
func validFold(ns, name string) *v1alpha1.KVFold {
	return &v1alpha1.KVFold{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.KVFoldSpec{
			NATS:   v1alpha1.NATSSpec{URLs: []string{"nats://nats.nats.svc:4222"}},
			Bucket: "routes",
		},
	}
}

// unstructuredFromYAML parses one object, for requests a typed client cannot express.
func unstructuredFromYAML(doc string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal([]byte(doc), &u.Object)).To(Succeed())
	return u
}
