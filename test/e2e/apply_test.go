package e2e

import (
	"fmt"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Scenario 1: apply a KVFold; the DaemonSet's Pod runs the agent on the node; the fold on the
// node equals the bucket through the read API and, once the agent is gone, through `agent
// dump` on the host path; Ready=True; the lag and export columns of `kubectl get kvf` fill.
func describeApply() {
	Describe("applying a KVFold", func() {
		It("runs the agent, folds exactly the bucket in scope, reports Ready, lag and exports", func() {
			conn := connect(suite.nats.url())
			b, err := conn.CreateBucket(bg, kv.BucketConfig{Name: "e2e-apply"})
			Expect(err).NotTo(HaveOccurred())
			putN(b, "route.", 200, "seed")
			putN(b, "cert.", 40, "seed")
			putN(b, "wasm.", 40, "seed")
			putN(b, "other.", 30, "seed") // outside the scope

			f := &fold{name: "apply", bucket: "e2e-apply", natsURL: suite.nats.url(), port: freePort(),
				prefixes: []string{"route.", "cert.", "wasm."}, export: true}
			f.apply()
			By("the DaemonSet's Pod runs the agent on the node, on the host network")
			pod := f.readyPod(2 * time.Minute)
			Expect(pod.Spec.NodeName).To(Equal(suite.node))
			Expect(pod.Spec.HostNetwork).To(BeTrue())
			f.condition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAllNodesLive, 2*time.Minute)

			By("under write load, the node reports its cursor and lag into the KVFold's status")
			w := startWriter(b, "route.", 200, 50)
			DeferCleanup(w.stop)
			Eventually(func() error {
				if n := w.writes.Load(); n < 200 {
					return fmt.Errorf("%d writes so far", n)
				}
				n, err := f.node()
				if err != nil {
					return err
				}
				if n.Status.Phase != v1alpha1.PhaseLive || n.Status.Cursor == 0 || n.Status.Pod != pod.Name {
					return fmt.Errorf("KVFoldNode status %+v", n.Status)
				}
				st := f.get().Status
				if st.MinCursor == 0 || st.StreamLastSequence == 0 || st.NodeSummary != "1/1" {
					return fmt.Errorf("KVFold status: minCursor %d streamLastSequence %d nodes %q", st.MinCursor, st.StreamLastSequence, st.NodeSummary)
				}
				return nil
			}, time.Minute).Should(Succeed())
			Expect(w.stop()).To(BeNumerically(">=", 200))

			By("the read API serves exactly the bucket's keys in scope")
			st := f.caughtUp(b, time.Minute)
			Expect(st.Prefixes).To(ConsistOf("route.", "cert.", "wasm."))
			_, err = f.client().Get(bg, "other.0001")
			Expect(err).To(HaveOccurred(), "a key outside the scope is served")
			Eventually(func() (int64, error) {
				n, err := f.node()
				return n.Status.Cursor, err
			}, time.Minute).Should(BeEquivalentTo(st.Cursor), "the KVFoldNode's cursor reaches the agent's")

			By("an export on demand (annotation " + v1alpha1.ExportNowAnnotation + ") fills Last export and ExportHealthy")
			_, err = kubectl("annotate", "kvfold", f.name, "-n", testNamespace, "--overwrite", v1alpha1.ExportNowAnnotation+"="+fmt.Sprint(time.Now().Unix()))
			Expect(err).NotTo(HaveOccurred())
			f.condition(v1alpha1.ConditionExportHealthy, metav1.ConditionTrue, v1alpha1.ReasonExportSucceeded, 2*time.Minute)
			Expect(f.get().Status.LastExport.Cursor).To(BeEquivalentTo(st.Cursor))
			f.event(v1alpha1.EventExportSucceeded, suite.node, time.Minute)

			By("kubectl get kvf shows Ready, Nodes, Max lag and Last export")
			out, err := kubectl("get", "kvf", f.name, "-n", testNamespace)
			Expect(err).NotTo(HaveOccurred())
			fmt.Fprintln(GinkgoWriter, out)
			rows := strings.Split(strings.TrimSpace(out), "\n")
			Expect(rows).To(HaveLen(2))
			Expect(strings.Fields(rows[0])).To(Equal([]string{"NAME", "READY", "NODES", "MAX", "LAG", "LAST", "EXPORT", "AGE"}))
			cols := strings.Fields(rows[1])
			Expect(cols).To(HaveLen(6), "a column is empty: %q", rows[1])
			Expect(cols[:3]).To(Equal([]string{f.name, "True", "1/1"}))
			Expect(cols[3]).To(MatchRegexp(`^[0-9.e-]+$`), "Max lag")
			Expect(cols[4]).To(MatchRegexp(`^[0-9]+[smhd]`), "Last export")

			By("deleting the KVFold (dataRetention Retain) keeps the fold on the host; agent dump equals the bucket")
			want := bucketState(b, f.prefixes)
			f.delete(2 * time.Minute)
			f.noPods(time.Minute)
			Expect(sameLines(want, f.dump())).To(Succeed())
			Expect(os.RemoveAll(f.hostDir())).To(Succeed())
		})
	})
}
