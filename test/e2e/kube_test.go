package e2e

import (
	"fmt"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// kube is a direct (uncached) client of the cluster.
var kube client.Client

func connectCluster() {
	GinkgoHelper()
	cfg, err := clientcmd.BuildConfigFromFlags("", suite.kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	kube, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	var nodes corev1.NodeList
	Eventually(func() error {
		if err := kube.List(bg, &nodes); err != nil {
			return err
		}
		if len(nodes.Items) != 1 {
			return fmt.Errorf("%d nodes, want the one node of the local cluster", len(nodes.Items))
		}
		return nil
	}).Should(Succeed())
	suite.node = nodes.Items[0].Name
}

// createTestNamespace creates the suite's namespace and the S3 credentials Secret the
// exporting folds reference.
func createTestNamespace() {
	GinkgoHelper()
	Expect(kube.Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}})).To(Succeed())
	Expect(kube.Create(bg, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: testNamespace},
		StringData: map[string]string{
			"AWS_ACCESS_KEY_ID":     suite.s3.AccessKey,
			"AWS_SECRET_ACCESS_KEY": suite.s3.SecretKey,
			"AWS_REGION":            "us-east-1",
		},
	})).To(Succeed())
}

// deleteTestNamespace deletes every KVFold (the manager runs their finalizers), waits for
// them to go, then deletes the namespace.
func deleteTestNamespace() {
	GinkgoHelper()
	var folds v1alpha1.KVFoldList
	if err := kube.List(bg, &folds, client.InNamespace(testNamespace)); err == nil {
		for i := range folds.Items {
			_ = kube.Delete(bg, &folds.Items[i])
		}
		left := func() (int, error) {
			err := kube.List(bg, &folds, client.InNamespace(testNamespace))
			return len(folds.Items), err
		}
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
			if n, err := left(); err == nil && n == 0 {
				break
			}
		}
		// A fold whose Delete cleanup failed (its spec reports that) keeps its finalizer:
		// give up its data the documented way, dataRetention Retain.
		for i := range folds.Items {
			_, _ = kubectl("patch", "kvfold", folds.Items[i].Name, "-n", testNamespace, "--type=merge", "-p", `{"spec":{"dataRetention":"Retain"}}`)
		}
		Eventually(left, time.Minute).Should(BeZero(), "KVFolds of the test namespace to be finalized")
	}
	_, err := kubectl("delete", "namespace", testNamespace, "--ignore-not-found", "--wait=true", "--timeout=180s")
	Expect(err).NotTo(HaveOccurred())
}

// fold describes a KVFold of the suite: the agent runs on the host network on its own port.
type fold struct {
	name, bucket string
	natsURL      string
	port         int
	prefixes     []string
	export       bool   // export to the suite's S3 bucket under <name>/
	retention    string // Retain (default) or Delete
	nodeSelector map[string]string
	credsSecret  string // spec.nats.credentialsSecretRef.name
	schedule     string // export schedule (default: hourly; the specs trigger exports themselves)
}

func (f *fold) exportURL() string { return suite.s3.URL(exportBucket + "/" + f.name) }

func (f *fold) apiURL() string { return fmt.Sprintf("http://127.0.0.1:%d", f.port) }

// hostDir is the fold's directory on the node (<hostPath>/<namespace>/<name>).
func (f *fold) hostDir() string { return suite.hostRoot + "/" + testNamespace + "/" + f.name }

// storeDir is the agent's --data-dir on the node: the store inside hostDir.
func (f *fold) storeDir() string { return f.hostDir() + "/fold" }

func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// manifest is the KVFold as a user would write it.
func (f *fold) manifest() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: slipstream.dev/v1alpha1\nkind: KVFold\nmetadata: {name: %s, namespace: %s}\nspec:\n", f.name, testNamespace)
	fmt.Fprintf(&b, "  nats:\n    urls: [%q]\n", f.natsURL)
	if f.credsSecret != "" {
		fmt.Fprintf(&b, "    credentialsSecretRef: {name: %s, key: user.creds}\n", f.credsSecret)
	}
	fmt.Fprintf(&b, "  bucket: %s\n", f.bucket)
	if len(f.prefixes) > 0 {
		fmt.Fprintf(&b, "  scope: {prefixes: %s}\n", quoted(f.prefixes))
	}
	fmt.Fprintf(&b, "  backend: {type: pebble}\n  storage: {hostPath: %s}\n  batch: {window: 10ms, maxUpdates: 100}\n", suite.hostRoot)
	if f.export {
		sched := f.schedule
		if sched == "" {
			sched = "0 * * * *"
		}
		fmt.Fprintf(&b, "  export:\n    url: %q\n    credentialsSecretRef: {name: s3-creds}\n    schedule: %q\n    retain: 5\n", f.exportURL(), sched)
	}
	if len(f.nodeSelector) > 0 {
		keys := make([]string, 0, len(f.nodeSelector))
		for k := range f.nodeSelector {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("  placement:\n    nodeSelector:\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "      %s: %q\n", k, f.nodeSelector[k])
		}
	}
	fmt.Fprintf(&b, "  agent: {port: %d, hostNetwork: true, logLevel: debug}\n", f.port)
	if f.retention != "" {
		fmt.Fprintf(&b, "  dataRetention: %s\n", f.retention)
	}
	return b.String()
}

func (f *fold) apply() {
	GinkgoHelper()
	out, err := kubectlApply(f.manifest())
	Expect(err).NotTo(HaveOccurred(), "kubectl apply of KVFold %s:\n%s", f.name, f.manifest())
	fmt.Fprint(GinkgoWriter, out)
	registerFold(f)
}

func (f *fold) get() *v1alpha1.KVFold {
	GinkgoHelper()
	var kf v1alpha1.KVFold
	Expect(kube.Get(bg, client.ObjectKey{Namespace: testNamespace, Name: f.name}, &kf)).To(Succeed())
	return &kf
}

// condition polls until the KVFold's condition has status (and reason, unless empty) for
// the current generation, and returns it.
func (f *fold) condition(typ string, status metav1.ConditionStatus, reason string, within time.Duration) metav1.Condition {
	GinkgoHelper()
	var got metav1.Condition
	Eventually(func() error {
		var kf v1alpha1.KVFold
		if err := kube.Get(bg, client.ObjectKey{Namespace: testNamespace, Name: f.name}, &kf); err != nil {
			return err
		}
		c := meta.FindStatusCondition(kf.Status.Conditions, typ)
		if c == nil {
			return fmt.Errorf("no %s condition yet (status %+v)", typ, kf.Status)
		}
		if c.Status != status || (reason != "" && c.Reason != reason) || c.ObservedGeneration != kf.Generation {
			return fmt.Errorf("%s=%s reason %s (gen %d of %d): %s", typ, c.Status, c.Reason, c.ObservedGeneration, kf.Generation, c.Message)
		}
		got = *c
		return nil
	}, within).Should(Succeed(), "KVFold %s condition %s=%s %s", f.name, typ, status, reason)
	return got
}

// node is the fold's KVFoldNode on the suite's node (written by the agent).
func (f *fold) node() (*v1alpha1.KVFoldNode, error) {
	var n v1alpha1.KVFoldNode
	err := kube.Get(bg, client.ObjectKey{Namespace: testNamespace, Name: v1alpha1.KVFoldNodeName(f.name, suite.node)}, &n)
	return &n, err
}

// pods are the fold's agent Pods.
func (f *fold) pods() ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := kube.List(bg, &pods, client.InNamespace(testNamespace),
		client.MatchingLabels{v1alpha1.LabelFold: f.name, v1alpha1.LabelComponent: "agent"})
	return pods.Items, err
}

// readyPod waits for exactly one agent Pod, Running and Ready, and returns it.
func (f *fold) readyPod(within time.Duration) corev1.Pod {
	GinkgoHelper()
	var pod corev1.Pod
	Eventually(func() error {
		pods, err := f.pods()
		if err != nil {
			return err
		}
		if len(pods) != 1 {
			return fmt.Errorf("%d agent Pods", len(pods))
		}
		p := pods[0]
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			return fmt.Errorf("Pod %s phase %s ready %v", p.Name, p.Status.Phase, podReady(&p))
		}
		pod = p
		return nil
	}, within).Should(Succeed(), "the agent Pod of %s to run and be ready", f.name)
	return pod
}

// noPod waits until the Pod with uid is gone.
func (f *fold) noPod(uid types.UID, within time.Duration) {
	GinkgoHelper()
	Eventually(func() error {
		pods, err := f.pods()
		if err != nil {
			return err
		}
		for _, p := range pods {
			if p.UID == uid {
				return fmt.Errorf("Pod %s still there (phase %s)", p.Name, p.Status.Phase)
			}
		}
		return nil
	}, within).Should(Succeed())
}

// noPods waits until the fold has no agent Pods.
func (f *fold) noPods(within time.Duration) {
	GinkgoHelper()
	Eventually(func() (int, error) {
		pods, err := f.pods()
		return len(pods), err
	}, within).Should(BeZero(), "the agent Pods of %s to be gone", f.name)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// events are the events on the KVFold, oldest first.
func (f *fold) events() []corev1.Event {
	GinkgoHelper()
	var list corev1.EventList
	Expect(kube.List(bg, &list, client.InNamespace(testNamespace))).To(Succeed())
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "KVFold" && e.InvolvedObject.Name == f.name {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return eventTime(out[i]).Before(eventTime(out[j])) })
	return out
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// event waits for an event with reason whose message contains substr.
func (f *fold) event(reason, substr string, within time.Duration) corev1.Event {
	GinkgoHelper()
	var got corev1.Event
	Eventually(func() error {
		var seen []string
		for _, e := range f.events() {
			if e.Reason == reason && strings.Contains(e.Message, substr) {
				got = e
				return nil
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return fmt.Errorf("no %s event containing %q; events: %q", reason, substr, seen)
	}, within).Should(Succeed())
	return got
}

// patchSpec merge-patches the KVFold's spec (as `kubectl patch --type=merge` would).
func (f *fold) patchSpec(patch string) {
	GinkgoHelper()
	out, err := kubectl("patch", "kvfold", f.name, "-n", testNamespace, "--type=merge", "-p", patch)
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprint(GinkgoWriter, out)
}

// delete deletes the KVFold and waits until it is gone (its finalizer done).
func (f *fold) delete(within time.Duration) {
	GinkgoHelper()
	kf := &v1alpha1.KVFold{ObjectMeta: metav1.ObjectMeta{Name: f.name, Namespace: testNamespace}}
	Expect(client.IgnoreNotFound(kube.Delete(bg, kf))).To(Succeed())
	Eventually(func() bool {
		return apierrors.IsNotFound(kube.Get(bg, client.ObjectKeyFromObject(kf), kf))
	}, within).Should(BeTrue(), "KVFold %s to be deleted (finalizer: %v)", f.name, kf.Finalizers)
	unregisterFold(f)
}
