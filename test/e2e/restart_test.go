package e2e

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// restartKeys is the bucket size of the restart scenario: a resume that replayed the bucket
// would apply about this many updates, a delta-only resume a few seconds of writes.
const restartKeys = 3000

// Scenario 2: delete the agent Pod, then kill -9 the agent process of its replacement, both
// under write load: each time the agent resumes from its persisted cursor (delta only: no
// resync, far fewer updates applied than the bucket holds) and ends exactly equal.
func describeRestart() {
	Describe("restarting the agent under write load", func() {
		It("resumes delta-only after a Pod deletion and after kill -9, and stays exact", func() {
			conn := connect(suite.nats.url())
			b, err := conn.CreateBucket(bg, kv.BucketConfig{Name: "e2e-restart"})
			Expect(err).NotTo(HaveOccurred())
			putN(b, "cfg.", restartKeys, "seed")
			f := &fold{name: "restart", bucket: "e2e-restart", natsURL: suite.nats.url(), port: freePort()}
			f.apply()
			DeferCleanup(func() { f.delete(2 * time.Minute); _ = os.RemoveAll(f.hostDir()) })
			first := f.readyPod(2 * time.Minute)
			f.caughtUp(b, 2*time.Minute)

			w := startWriter(b, "cfg.", restartKeys, 40)
			DeferCleanup(w.stop)

			By("deleting the agent Pod: the DaemonSet's new Pod resumes from the cursor")
			Expect(kube.Delete(bg, &first)).To(Succeed())
			f.noPod(first.UID, 2*time.Minute)
			second := f.readyPod(2 * time.Minute)
			expectDeltaOnly(f)

			By("kill -9 of the agent process: the container restarts and resumes from the cursor")
			pid := agentPID(f)
			Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
			Eventually(func() (int32, error) {
				pods, err := f.pods()
				if err != nil || len(pods) != 1 || len(pods[0].Status.ContainerStatuses) == 0 {
					return 0, err
				}
				p := pods[0]
				if p.UID != second.UID || !podReady(&p) {
					return 0, fmt.Errorf("Pod %s ready %v", p.Name, podReady(&p))
				}
				return p.Status.ContainerStatuses[0].RestartCount, nil
			}, 2*time.Minute).Should(BeNumerically(">=", 1), "the agent container restarted in the same Pod")
			Expect(agentPID(f)).NotTo(Equal(pid))
			expectDeltaOnly(f)

			By("after the writes stop, the fold is exact and the node reports no resync")
			Expect(w.stop()).To(BeNumerically(">", 0))
			f.caughtUp(b, time.Minute)
			Eventually(func() error {
				n, err := f.node()
				if err != nil {
					return err
				}
				if n.Status.Phase != v1alpha1.PhaseLive || n.Status.Resyncs != 0 || n.Status.CursorExpired != 0 {
					return fmt.Errorf("KVFoldNode status %+v", n.Status)
				}
				return nil
			}, time.Minute).Should(Succeed())
			f.condition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAllNodesLive, time.Minute)
		})
	})
}

// expectDeltaOnly checks the running agent process resumed without any resync or seeding and
// applied far fewer updates than a replay of the bucket would.
func expectDeltaOnly(f *fold) {
	GinkgoHelper()
	Eventually(func() error {
		st, err := f.status()
		if err != nil {
			return err
		}
		if st.Phase != "Live" {
			return fmt.Errorf("agent %s (%s)", st.Phase, st.LastError)
		}
		return nil
	}, time.Minute).Should(Succeed())
	for _, m := range []string{`slipstream_resyncs_total{mode="full"}`, `slipstream_resyncs_total{mode="seed"}`, `slipstream_cursor_expired_total`} {
		v, err := f.counter(m)
		Expect(err).NotTo(HaveOccurred())
		Expect(v).To(BeZero(), m)
	}
	puts, err := f.counter(`slipstream_updates_applied_total{op="put"}`)
	Expect(err).NotTo(HaveOccurred())
	dels, err := f.counter(`slipstream_updates_applied_total{op="delete"}`)
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(GinkgoWriter, "resumed agent applied %v puts and %v deletes (bucket: %d keys)\n", puts, dels, restartKeys)
	Expect(puts+dels).To(BeNumerically("<", restartKeys/3), "the resume replayed far more than a delta")
}

// agentPID finds the host PID of the fold's agent process: the one process whose
// environment names this KVFold (the controller sets it on the agent container).
func agentPID(f *fold) int {
	GinkgoHelper()
	var pid int
	Eventually(func() error {
		want := [][]byte{[]byte("\x00" + v1alpha1.EnvFoldName + "=" + f.name + "\x00"), []byte("\x00" + v1alpha1.EnvFoldNamespace + "=" + testNamespace + "\x00")}
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		var found []int
		for _, e := range entries {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
			if err != nil {
				continue
			}
			env = append(append([]byte{0}, env...), 0)
			if bytes.Contains(env, want[0]) && bytes.Contains(env, want[1]) {
				found = append(found, p)
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("%d processes carry the KVFold's environment: %v", len(found), found)
		}
		pid = found[0]
		return nil
	}, 30*time.Second).Should(Succeed())
	return pid
}
