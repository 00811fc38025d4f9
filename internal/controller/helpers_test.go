package controller

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

var bg = context.Background()

func key(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

// getFold returns the fold as stored now.
func getFold(ns, name string) *v1alpha1.KVFold {
	GinkgoHelper()
	f := &v1alpha1.KVFold{}
	Expect(k8sClient.Get(bg, key(ns, name), f)).To(Succeed())
	return f
}

// expectCondition waits until the fold's condition has status and reason and a message
// containing msg, with observedGeneration current.
func expectCondition(ns, name, t string, status metav1.ConditionStatus, reason, msg string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		f := getFold(ns, name)
		c := meta.FindStatusCondition(f.Status.Conditions, t)
		g.Expect(c).NotTo(BeNil(), "no %s condition", t)
		g.Expect(c.Status).To(Equal(status), "%s: %s", t, c.Message)
		g.Expect(c.Reason).To(Equal(reason), "%s: %s", t, c.Message)
		g.Expect(c.Message).To(ContainSubstring(msg))
		g.Expect(c.ObservedGeneration).To(Equal(f.Generation))
		g.Expect(f.Status.ObservedGeneration).To(Equal(f.Generation))
	}).Should(Succeed())
}

// addNodes creates Nodes (cluster scoped, so named after the test namespace) with labels
// and returns their names.
func addNodes(ns string, labels map[string]string, n int) []string {
	GinkgoHelper()
	var names []string
	for i := 1; i <= n; i++ {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-n%d", ns, i), Labels: labels}}
		Expect(k8sClient.Create(bg, node)).To(Succeed())
		names = append(names, node.Name)
	}
	return names
}

// runAgents plays the DaemonSet controller: one agent Pod per node, owned by the DaemonSet.
func runAgents(ns, fold string, nodes ...string) {
	GinkgoHelper()
	ds := &appsv1.DaemonSet{}
	Eventually(func() error { return k8sClient.Get(bg, key(ns, fold), ds) }).Should(Succeed())
	Eventually(func() error {
		return k8sClient.Get(bg, key(ns, fold+"-agent"), &corev1.ServiceAccount{})
	}).Should(Succeed())
	for _, node := range nodes {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ns, Name: fold + "-" + node[len(node)-2:], Labels: ds.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: ptr.To(true)}},
			},
			Spec: corev1.PodSpec{
				NodeName: node, ServiceAccountName: fold + "-agent", AutomountServiceAccountToken: ptr.To(false),
				Containers: []corev1.Container{{Name: "agent", Image: testAgentImage}},
			},
		}
		Expect(k8sClient.Create(bg, pod)).To(Succeed())
	}
}

// stopAgents deletes the agent Pods of a fold, as the DaemonSet controller would.
func stopAgents(ns, fold string) {
	GinkgoHelper()
	Expect(k8sClient.DeleteAllOf(bg, &corev1.Pod{}, client.InNamespace(ns),
		client.MatchingLabels{v1alpha1.LabelFold: fold}, client.GracePeriodSeconds(0))).To(Succeed())
}

// setDaemonSetStatus plays the DaemonSet controller's status report.
func setDaemonSetStatus(ns, fold string, desired, ready, updated int32) {
	GinkgoHelper()
	Eventually(func() error {
		ds := &appsv1.DaemonSet{}
		if err := k8sClient.Get(bg, key(ns, fold), ds); err != nil {
			return err
		}
		ds.Status = appsv1.DaemonSetStatus{
			ObservedGeneration: ds.Generation, DesiredNumberScheduled: desired, CurrentNumberScheduled: desired,
			NumberReady: ready, UpdatedNumberScheduled: updated, NumberAvailable: ready,
		}
		return k8sClient.Status().Update(bg, ds)
	}).Should(Succeed())
}

// reportAgent plays an agent: it merge-patches the status of its KVFoldNode.
func reportAgent(ns, fold, node string, s v1alpha1.KVFoldNodeStatus) {
	GinkgoHelper()
	if s.Pod == "" {
		s.Pod = fold + "-" + node[len(node)-2:]
	}
	now := metav1.NewTime(time.Now())
	s.LastUpdateTime = &now
	Eventually(func() error {
		n := &v1alpha1.KVFoldNode{}
		if err := k8sClient.Get(bg, key(ns, v1alpha1.KVFoldNodeName(fold, node)), n); err != nil {
			return err
		}
		patch := client.MergeFrom(n.DeepCopy())
		n.Status = s
		return k8sClient.Status().Patch(bg, n, patch)
	}).Should(Succeed())
}

// eventsFor lists the events on a fold with a reason.
func eventsFor(ns, fold, reason string) []eventsv1.Event {
	var list eventsv1.EventList
	Expect(k8sClient.List(bg, &list, client.InNamespace(ns))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == fold && e.Regarding.Kind == "KVFold" && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// expectEvent waits for an event on the fold with reason and a note containing note.
func expectEvent(ns, fold, reason, note string) {
	GinkgoHelper()
	Eventually(func() []string {
		var notes []string
		for _, e := range eventsFor(ns, fold, reason) {
			notes = append(notes, e.Note)
		}
		return notes
	}).Should(ContainElement(ContainSubstring(note)), "no %s event mentioning %q", reason, note)
}

func createSecret(ns, name string, data map[string]string) {
	GinkgoHelper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	Expect(k8sClient.Create(bg, s)).To(Succeed())
}

func nodeObj(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func resourceMust(s string) resource.Quantity { return resource.MustParse(s) }

func nodeObjWithLabels(name string, labels map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}
