package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

var _ = Describe("KVFold status", func() {
	var (
		ns    string
		nodes []string
	)
	const fold = "routes"
	BeforeEach(func() {
		ns = newNamespace()
		nodes = addNodes(ns, map[string]string{"fleet": ns}, 3)
		f := validFold(ns, fold)
		f.Spec.Placement.NodeSelector = map[string]string{"fleet": ns}
		f.Spec.Export = &v1alpha1.ExportSpec{URL: "s3://folds/routes", Schedule: "*/15 * * * *"}
		Expect(k8sClient.Create(bg, f)).To(Succeed())
		runAgents(ns, fold, nodes...)
	})

	It("creates one KVFoldNode per agent node and lets only those agents patch them", func() {
		Eventually(func(g Gomega) {
			var list v1alpha1.KVFoldNodeList
			g.Expect(k8sClient.List(bg, &list, client.InNamespace(ns))).To(Succeed())
			var got []string
			for _, n := range list.Items {
				g.Expect(metav1.IsControlledBy(&n, getFold(ns, fold))).To(BeTrue())
				got = append(got, n.Spec.NodeName)
			}
			g.Expect(got).To(ConsistOf(nodes))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			role := &rbacv1.Role{}
			g.Expect(k8sClient.Get(bg, key(ns, fold+"-agent"), role)).To(Succeed())
			var names []string
			for _, r := range role.Rules {
				if len(r.Resources) == 1 && r.Resources[0] == "kvfoldnodes/status" {
					names = r.ResourceNames
				}
			}
			g.Expect(names).To(ConsistOf(v1alpha1.KVFoldNodeName(fold, nodes[0]), v1alpha1.KVFoldNodeName(fold, nodes[1]), v1alpha1.KVFoldNodeName(fold, nodes[2])))
		}).Should(Succeed())
	})

	It("aggregates the node statuses and walks the conditions through their transitions", func() {
		By("a rollout in progress")
		setDaemonSetStatus(ns, fold, 3, 0, 1)
		expectCondition(ns, fold, v1alpha1.ConditionProgressing, metav1.ConditionTrue, v1alpha1.ReasonRollingOut, "1/3 nodes updated")
		expectCondition(ns, fold, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNodesNotReady, "0/3 nodes ready")
		expectCondition(ns, fold, v1alpha1.ConditionExportHealthy, metav1.ConditionUnknown, v1alpha1.ReasonExportPending, "no export yet")

		By("agents catching up")
		setDaemonSetStatus(ns, fold, 3, 2, 3)
		reportAgent(ns, fold, nodes[0], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseLive, Cursor: 100, StreamLastSequence: 100, Keys: 40})
		reportAgent(ns, fold, nodes[1], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseCatchingUp, Cursor: 80, StreamLastSequence: 100, Pending: 20, LagSeconds: 1.5, Keys: 35})
		reportAgent(ns, fold, nodes[2], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseLive, Cursor: 99, StreamLastSequence: 100, Pending: 1, LagSeconds: 0.2, Keys: 40})
		Eventually(func(g Gomega) {
			s := getFold(ns, fold).Status
			g.Expect(s.Nodes).To(Equal(v1alpha1.NodeCounts{Desired: 3, Ready: 2, Updated: 3}))
			g.Expect(s.NodeSummary).To(Equal("2/3"))
			g.Expect(s.StreamLastSequence).To(BeEquivalentTo(100))
			g.Expect(s.MinCursor).To(BeEquivalentTo(80))
			g.Expect(s.MaxPending).To(BeEquivalentTo(20))
			g.Expect(s.MaxLagSeconds).To(Equal(1.5))
			g.Expect(s.TopLaggards).To(HaveLen(2))
			g.Expect(s.TopLaggards[0].Node).To(Equal(nodes[1]))
			g.Expect(s.TopLaggards[1].Node).To(Equal(nodes[2]))
		}).Should(Succeed())
		expectCondition(ns, fold, v1alpha1.ConditionProgressing, metav1.ConditionTrue, v1alpha1.ReasonCatchingUp, nodes[1]+" (CatchingUp)")
		expectCondition(ns, fold, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNodesNotReady, "not Live: "+nodes[1]+" (CatchingUp)")

		By("every agent Live")
		reportAgent(ns, fold, nodes[1], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseLive, Cursor: 100, StreamLastSequence: 100, Keys: 40})
		reportAgent(ns, fold, nodes[2], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseLive, Cursor: 100, StreamLastSequence: 100, Keys: 40})
		setDaemonSetStatus(ns, fold, 3, 3, 3)
		expectCondition(ns, fold, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAllNodesLive, "3/3 nodes Live")
		expectCondition(ns, fold, v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonStable, "")
		expectCondition(ns, fold, v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected, "")
		expectCondition(ns, fold, v1alpha1.ConditionCursorExpired, metav1.ConditionFalse, v1alpha1.ReasonCursorsCurrent, "")
		Eventually(func() []v1alpha1.NodeLag { return getFold(ns, fold).Status.TopLaggards }).Should(BeEmpty())

		By("an agent Degraded")
		reportAgent(ns, fold, nodes[2], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseDegraded, Cursor: 100, LastError: "nats: no servers available for connection"})
		expectCondition(ns, fold, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonNodesDegraded, nodes[2]+": nats: no servers available for connection")
		expectEvent(ns, fold, v1alpha1.EventDegraded, "nats: no servers available")

		By("its cursor expired: seeding from an export, then a resync")
		reportAgent(ns, fold, nodes[2], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseSeeding, Cursor: 100, CursorExpired: 1})
		expectCondition(ns, fold, v1alpha1.ConditionCursorExpired, metav1.ConditionTrue, v1alpha1.ReasonRecovering, nodes[2]+" (Seeding)")
		expectCondition(ns, fold, v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected, "")
		expectEvent(ns, fold, v1alpha1.EventCursorExpired, "node "+nodes[2]+": cursor 100 expired")
		reportAgent(ns, fold, nodes[2], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseCatchingUp, Cursor: 150, CursorExpired: 1, Resyncs: 1, SeededFrom: "s3://folds/routes/00000000000000000150.fold"})
		expectEvent(ns, fold, v1alpha1.EventSeededFromExport, "seeded from export s3://folds/routes/00000000000000000150.fold")
		expectEvent(ns, fold, v1alpha1.EventResyncStarted, "node "+nodes[2]+": full resync")
		reportAgent(ns, fold, nodes[2], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseLive, Cursor: 160, CursorExpired: 1, Resyncs: 1, SeededFrom: "s3://folds/routes/00000000000000000150.fold"})
		expectCondition(ns, fold, v1alpha1.ConditionCursorExpired, metav1.ConditionFalse, v1alpha1.ReasonCursorsCurrent, "recovered since their start: "+nodes[2])

		By("events fire once per transition")
		Consistently(func() int { return len(eventsFor(ns, fold, v1alpha1.EventCursorExpired)) }).Should(Equal(1))
		Expect(eventsFor(ns, fold, v1alpha1.EventSeededFromExport)).To(HaveLen(1))
	})

	It("judges exports: success, failure, overdue", func() {
		setDaemonSetStatus(ns, fold, 3, 3, 3)
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		By("a successful export")
		reportAgent(ns, fold, nodes[0], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseLive, Cursor: 100,
			LastExportAttempt: &now,
			LastExport:        &v1alpha1.ExportRecord{Time: now, Cursor: 100, URL: "s3://folds/routes/00000000000000000100.fold", Keys: 40, Bytes: 4096}})
		expectCondition(ns, fold, v1alpha1.ConditionExportHealthy, metav1.ConditionTrue, v1alpha1.ReasonExportSucceeded, "cursor 100, 40 keys, 4096 bytes")
		Eventually(func(g Gomega) {
			e := getFold(ns, fold).Status.LastExport
			g.Expect(e).NotTo(BeNil())
			g.Expect(e.Cursor).To(BeEquivalentTo(100))
			g.Expect(e.Node).To(Equal(nodes[0]))
		}).Should(Succeed())
		expectEvent(ns, fold, v1alpha1.EventExportSucceeded, "exported cursor 100 (40 keys, 4096 bytes)")

		By("a failed attempt after it")
		later := metav1.NewTime(now.Add(time.Minute))
		reportAgent(ns, fold, nodes[0], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseLive, Cursor: 120,
			LastExportAttempt: &later, LastExportError: "upload: AccessDenied",
			LastExport: &v1alpha1.ExportRecord{Time: now, Cursor: 100, URL: "s3://folds/routes/00000000000000000100.fold", Keys: 40, Bytes: 4096}})
		expectCondition(ns, fold, v1alpha1.ConditionExportHealthy, metav1.ConditionFalse, v1alpha1.ReasonExportFailed, "upload: AccessDenied")
		expectEvent(ns, fold, v1alpha1.EventExportFailed, "node "+nodes[0]+": export failed: upload: AccessDenied")
	})

	It("reports an overdue export", func() {
		setDaemonSetStatus(ns, fold, 3, 3, 3)
		old := metav1.NewTime(time.Now().Add(-3 * time.Hour).Truncate(time.Second))
		reportAgent(ns, fold, nodes[1], v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseLive, Cursor: 100,
			LastExportAttempt: &old, LastExport: &v1alpha1.ExportRecord{Time: old, Cursor: 90, Keys: 40, Bytes: 4096}})
		expectCondition(ns, fold, v1alpha1.ConditionExportHealthy, metav1.ConditionFalse, v1alpha1.ReasonExportOverdue, "no export since "+old.UTC().Format(time.RFC3339))
	})

	It("removes the status objects of nodes that left", func() {
		Eventually(func() int {
			var list v1alpha1.KVFoldNodeList
			Expect(k8sClient.List(bg, &list, client.InNamespace(ns))).To(Succeed())
			return len(list.Items)
		}).Should(Equal(3))
		By("one node deleted from the cluster, one relabelled out of the placement")
		Expect(k8sClient.Delete(bg, nodeObj(nodes[0]))).To(Succeed())
		n1 := nodeObj(nodes[1])
		Expect(k8sClient.Get(bg, client.ObjectKeyFromObject(n1), n1)).To(Succeed())
		n1.Labels = map[string]string{"fleet": "elsewhere"}
		Expect(k8sClient.Update(bg, n1)).To(Succeed())
		stopAgents(ns, fold)
		runAgents(ns, fold, nodes[2])
		Eventually(func() []string {
			var list v1alpha1.KVFoldNodeList
			Expect(k8sClient.List(bg, &list, client.InNamespace(ns))).To(Succeed())
			var got []string
			for _, n := range list.Items {
				got = append(got, n.Spec.NodeName)
			}
			return got
		}).Should(ConsistOf(nodes[2]))
	})

	It("reports no matching nodes", func() {
		setDaemonSetStatus(ns, fold, 0, 0, 0)
		expectCondition(ns, fold, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNoNodes, "no node matches spec.placement")
	})

	It("waits for the DaemonSet controller before calling anything Ready", func() {
		ds := &appsv1.DaemonSet{}
		Eventually(func() error { return k8sClient.Get(bg, key(ns, fold), ds) }).Should(Succeed())
		expectCondition(ns, fold, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDaemonSetNotReady, "not been observed")
	})
})
