package controller

import (
	"errors"
	"path"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

var _ = Describe("KVFold deletion", func() {
	var (
		ns    string
		nodes []string
	)
	const fold = "routes"
	create := func(retention v1alpha1.DataRetentionPolicy) {
		nodes = addNodes(ns, map[string]string{"fleet": ns}, 2)
		f := validFold(ns, fold)
		f.Spec.Placement.NodeSelector = map[string]string{"fleet": ns}
		f.Spec.DataRetention = retention
		Expect(k8sClient.Create(bg, f)).To(Succeed())
		Eventually(func() []string { return getFold(ns, fold).Finalizers }).Should(ContainElement(v1alpha1.Finalizer))
		runAgents(ns, fold, nodes...)
	}
	gone := func() error {
		err := k8sClient.Get(bg, key(ns, fold), &v1alpha1.KVFold{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err == nil:
			return errors.New("the KVFold still exists")
		}
		return err
	}
	jobs := func() []batchv1.Job {
		var list batchv1.JobList
		Expect(k8sClient.List(bg, &list, client.InNamespace(ns))).To(Succeed())
		return list.Items
	}
	finishJob := func(j *batchv1.Job, ok bool) {
		GinkgoHelper()
		now := metav1.NewTime(time.Now())
		Eventually(func() error {
			if err := k8sClient.Get(bg, client.ObjectKeyFromObject(j), j); err != nil {
				return err
			}
			j.Status.StartTime = &now
			if ok {
				j.Status.Succeeded = 1
				j.Status.CompletionTime = &now
				j.Status.Conditions = []batchv1.JobCondition{
					{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
					{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
				}
			} else {
				j.Status.Failed = 4
				j.Status.Conditions = []batchv1.JobCondition{
					{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "BackoffLimitExceeded"},
					{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "BackoffLimitExceeded"},
				}
			}
			return k8sClient.Status().Update(bg, j)
		}).Should(Succeed())
	}
	BeforeEach(func() { ns = newNamespace() })

	It("Retain: removes the finalizer at once and runs no cleanup", func() {
		create(v1alpha1.RetainData)
		Expect(k8sClient.Delete(bg, getFold(ns, fold))).To(Succeed())
		Eventually(gone).Should(Succeed())
		Expect(jobs()).To(BeEmpty())
	})

	It("Delete: stops the agents, cleans every node, then lets the KVFold go", func() {
		create(v1alpha1.DeleteData)
		Expect(k8sClient.Delete(bg, getFold(ns, fold))).To(Succeed())

		By("the DaemonSet goes first, and nothing is deleted while agents run")
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(bg, key(ns, fold), &appsv1.DaemonSet{}))
		}).Should(BeTrue())
		expectCondition(ns, fold, v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonDeleting, "waiting for the agents to stop on 2 nodes")
		Consistently(jobs).Should(BeEmpty())

		By("one cleanup Job per node once the agents are gone")
		stopAgents(ns, fold)
		Eventually(func() int { return len(jobs()) }).Should(Equal(2))
		var pinned []string
		for _, j := range jobs() {
			pod := j.Spec.Template.Spec
			pinned = append(pinned, pod.NodeName)
			Expect(pod.Containers[0].Image).To(Equal(testCleanupImage))
			Expect(pod.Containers[0].Args).To(Equal([]string{PurgeCommand, "--path=/fold-parent/" + fold}))
			Expect(pod.Volumes[0].HostPath.Path).To(Equal(path.Join("/var/lib/slipstream", ns)))
		}
		Expect(pinned).To(ConsistOf(nodes))
		expectEvent(ns, fold, v1alpha1.EventCleanupStarted, "deleting /var/lib/slipstream/"+ns+"/"+fold)
		Expect(gone()).NotTo(Succeed(), "the KVFold went before its data")

		By("the KVFold goes when every Job succeeded")
		js := jobs()
		finishJob(&js[0], true)
		Consistently(gone).ShouldNot(Succeed())
		finishJob(&js[1], true)
		Eventually(gone).Should(Succeed())
	})

	It("Delete: a failed cleanup keeps the KVFold, says so, and Retain lets it go", func() {
		create(v1alpha1.DeleteData)
		Expect(k8sClient.Delete(bg, getFold(ns, fold))).To(Succeed())
		stopAgents(ns, fold)
		Eventually(func() int { return len(jobs()) }).Should(Equal(2))
		js := jobs()
		finishJob(&js[0], true)
		finishJob(&js[1], false)
		expectCondition(ns, fold, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonCleanupFailed, "set spec.dataRetention to Retain")
		expectEvent(ns, fold, v1alpha1.EventDegraded, "CleanupFailed")
		Consistently(gone).ShouldNot(Succeed())

		Eventually(func() error {
			f := getFold(ns, fold)
			f.Spec.DataRetention = v1alpha1.RetainData
			return k8sClient.Update(bg, f)
		}).Should(Succeed())
		Eventually(gone).Should(Succeed())
	})
})
