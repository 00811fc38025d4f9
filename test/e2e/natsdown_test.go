package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Scenario 3: NATS goes away. The KVFold turns Degraded=True with the node and its error
// named, reads keep working marked stale, and when NATS is back the fold is Ready again
// without anyone touching it. This fold has its own nats-server, stopped by its PID.
func describeNATSDown() {
	Describe("NATS down", func() {
		It("reports Degraded with the reason, serves stale reads, and recovers to Ready by itself", func() {
			own := startNATS(filepath.Join(suite.tmp, "nats-down"))
			DeferCleanup(own.stop)
			conn := connect(own.url())
			b, err := conn.CreateBucket(bg, kv.BucketConfig{Name: "e2e-down"})
			Expect(err).NotTo(HaveOccurred())
			putN(b, "route.", 100, "before")
			f := &fold{name: "down", bucket: "e2e-down", natsURL: own.url(), port: freePort()}
			f.apply()
			DeferCleanup(func() { f.delete(2 * time.Minute); _ = os.RemoveAll(f.hostDir()) })
			f.readyPod(2 * time.Minute)
			f.caughtUp(b, time.Minute)
			f.condition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAllNodesLive, time.Minute)

			By("stopping nats-server (pid " + fmt.Sprint(own.p.Pid()) + ")")
			own.stop()
			c := f.condition(v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonNodesDegraded, time.Minute)
			fmt.Fprintf(GinkgoWriter, "Degraded: %s\n", c.Message)
			Expect(c.Message).To(MatchRegexp(`^Degraded nodes: %s: \S`, regexp.QuoteMeta(suite.node)), "the node and its error are named")
			f.event(v1alpha1.EventDegraded, suite.node, time.Minute)
			n, err := f.node()
			Expect(err).NotTo(HaveOccurred())
			Expect(n.Status.Phase).To(Equal(v1alpha1.PhaseDegraded))
			Expect(n.Status.LastError).NotTo(BeEmpty())

			By("reads keep working, marked stale")
			e, err := f.client().Get(bg, "route.0042")
			Expect(err).NotTo(HaveOccurred())
			Expect(e.Stale).To(BeTrue(), "X-Slipstream-Stale on a read while Degraded")
			Expect(string(e.Value)).To(ContainSubstring(`"before"`))
			st, err := f.status()
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Stale).To(BeTrue())
			f.condition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNodesNotReady, time.Minute)

			By("starting nats-server again: Ready without intervention")
			own.start()
			f.condition(v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected, 2*time.Minute)
			f.condition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAllNodesLive, 2*time.Minute)
			putN(b, "route.", 10, "after")
			f.caughtUp(b, time.Minute)
			e, err = f.client().Get(bg, "route.0003")
			Expect(err).NotTo(HaveOccurred())
			Expect(e.Stale).To(BeFalse())
			Expect(string(e.Value)).To(ContainSubstring(`"after"`))
		})
	})
}
