package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
	"github.com/slipstream-dev/slipstream/pkg/client"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// awayLabel is a node label no node has: a nodeSelector on it takes the agent off the node.
const awayLabel = "slipstream.dev/e2e-away"

// Scenario 4: cursor expiry. The node's agent is kept away (a placement change) while every
// message it had ages out of a MaxAge bucket and keys are written and deleted. Another node
// exports meanwhile: this one-node cluster has no other node, so a stand-alone agent on the
// host plays it (same bucket, same export location). Back on the node, the agent finds its
// cursor expired (CursorExpired event, the condition's recovery), seeds from the newest
// export (SeededFromExport), receives from NATS only the tail after it, and is exact.
func describeCursorExpiry() {
	Describe("cursor expiry", func() {
		It("seeds from the newest export, takes only the tail, reconciles deletes, and reports it", func() {
			conn := connect(suite.nats.url())
			cfg := kv.BucketConfig{Name: "e2e-expiry", MaxAge: time.Hour}
			b, err := conn.CreateBucket(bg, cfg)
			Expect(err).NotTo(HaveOccurred())
			putN(b, "old.", 20, "old")
			f := &fold{name: "expiry", bucket: "e2e-expiry", natsURL: suite.nats.url(), port: freePort(), export: true}
			f.apply()
			DeferCleanup(func() { f.delete(2 * time.Minute); _ = os.RemoveAll(f.hostDir()) })
			f.readyPod(2 * time.Minute)
			f.caughtUp(b, time.Minute)

			By("placement away from the node: the agent stops")
			f.patchSpec(fmt.Sprintf(`{"spec":{"placement":{"nodeSelector":{%q:"true"}}}}`, awayLabel))
			f.noPods(2 * time.Minute)
			f.condition(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNoNodes, time.Minute)

			By("every message the fold holds ages out; keys are written and deleted meanwhile")
			cfg.MaxAge = time.Second
			_, err = conn.CreateOrUpdateBucket(bg, cfg)
			Expect(err).NotTo(HaveOccurred())
			Eventually(func() (uint64, error) {
				st, err := b.Status(bg)
				return st.Msgs, err
			}, 30*time.Second).Should(BeZero())
			cfg.MaxAge = time.Hour // keep what comes next, however slow the rest is
			_, err = conn.CreateOrUpdateBucket(bg, cfg)
			Expect(err).NotTo(HaveOccurred())
			putN(b, "new.", 10, "new")
			for _, k := range []string{"new.0003", "new.0007"} {
				_, err := b.Delete(bg, k)
				Expect(err).NotTo(HaveOccurred())
			}

			By("another node (a stand-alone agent on the host) exports the bucket")
			exported := peerExport(f)

			By("a tail after the export: 3 puts and 1 delete")
			putN(b, "tail.", 3, "tail")
			_, err = b.Delete(bg, "new.0001")
			Expect(err).NotTo(HaveOccurred())

			By("placement back on the node: the agent finds its cursor expired and seeds from the export")
			f.patchSpec(`{"spec":{"placement":{"nodeSelector":null}}}`)
			f.readyPod(2 * time.Minute)
			st := f.caughtUp(b, 2*time.Minute)
			Expect(st.CursorExpired).To(BeEquivalentTo(1))
			Expect(st.Resyncs).To(BeZero(), "a full resync instead of seeding")
			Expect(st.SeededFrom).To(HaveSuffix(exported))
			_, err = f.client().Get(bg, "old.0000")
			Expect(err).To(MatchError(client.ErrNotFound), "a key that aged out of NATS is still served")
			_, err = f.client().Get(bg, "new.0003")
			Expect(err).To(MatchError(client.ErrNotFound), "a key deleted while away is still served")

			// NATS delivered only what it holds after the expired cursor (the resume reads that
			// delta before it can tell the cursor expired: 13 puts, 3 deletes) and the tail after
			// the seed, never the bucket again: no full resync, one seed from the export.
			for series, want := range map[string]float64{
				`slipstream_seeds_total{source="export"}`: 1,
				`slipstream_resyncs_total{mode="full"}`:   0,
				`slipstream_cursor_expired_total`:         1,
			} {
				v, err := f.counter(series)
				Expect(err).NotTo(HaveOccurred())
				Expect(v).To(Equal(want), series)
			}
			puts, err := f.counter(`slipstream_updates_applied_total{op="put"}`)
			Expect(err).NotTo(HaveOccurred())
			dels, err := f.counter(`slipstream_updates_applied_total{op="delete"}`)
			Expect(err).NotTo(HaveOccurred())
			fmt.Fprintf(GinkgoWriter, "the agent applied %v puts and %v deletes from NATS\n", puts, dels)
			Expect(puts).To(BeNumerically("<=", 13+3), "puts from NATS beyond the delta and the tail")
			Expect(dels).To(BeNumerically("<=", 3+1), "deletes from NATS beyond the delta and the tail")

			By("the KVFold reports it: events, the node's status and the CursorExpired condition")
			f.event(v1alpha1.EventCursorExpired, suite.node, time.Minute)
			f.event(v1alpha1.EventSeededFromExport, exported, time.Minute)
			Eventually(func() error {
				n, err := f.node()
				if err != nil {
					return err
				}
				if n.Status.CursorExpired != 1 || !strings.HasSuffix(n.Status.SeededFrom, exported) || n.Status.Phase != v1alpha1.PhaseLive {
					return fmt.Errorf("KVFoldNode status %+v", n.Status)
				}
				return nil
			}, time.Minute).Should(Succeed())
			c := f.condition(v1alpha1.ConditionCursorExpired, metav1.ConditionFalse, v1alpha1.ReasonCursorsCurrent, time.Minute)
			Expect(c.Message).To(ContainSubstring("recovered since their start: " + suite.node))
			f.condition(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAllNodesLive, time.Minute)
		})
	})
}

// peerStatus is the part of /v1/status the peer export needs.
type peerStatus struct {
	Phase      string `json:"phase"`
	Cursor     uint64 `json:"cursor"`
	LastError  string `json:"lastError"`
	LastExport *struct {
		Object string `json:"object"`
		Cursor uint64 `json:"cursor"`
	} `json:"lastExport"`
}

// peerExport runs a stand-alone agent on the host with the fold's bucket, scope and export
// location, has it export at the bucket's last sequence, stops it, and returns the export's
// object name.
func peerExport(f *fold) string {
	GinkgoHelper()
	conn := connect(f.natsURL)
	b, err := conn.Bucket(bg, f.bucket)
	Expect(err).NotTo(HaveOccurred())
	bs, err := b.Status(bg)
	Expect(err).NotTo(HaveOccurred())
	listen := fmt.Sprintf("127.0.0.1:%d", freePort())
	args := []string{"--nats-url", f.natsURL, "--bucket", f.bucket, "--data-dir", filepath.Join(suite.tmp, "peer-"+f.name),
		"--export-url", f.exportURL(), "--export-holder", "e2e-peer"}
	for _, p := range f.prefixes {
		args = append(args, "--prefix", p)
	}
	env := []string{"AWS_ACCESS_KEY_ID=" + suite.s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + suite.s3.SecretKey, "AWS_REGION=us-east-1"}
	p := startPeerAgent("peer-agent-"+f.name, env, listen, args...)
	base := "http://" + listen
	get := func() (peerStatus, error) {
		var st peerStatus
		resp, err := http.Get(base + "/v1/status")
		if err != nil {
			return st, err
		}
		defer resp.Body.Close()
		err = json.NewDecoder(resp.Body).Decode(&st)
		return st, err
	}
	Eventually(func() error {
		if !p.Running() {
			return StopTrying("the peer agent exited:\n" + p.Output())
		}
		st, err := get()
		if err != nil {
			return err
		}
		if st.Phase != "Live" || st.Cursor < bs.LastSeq {
			return fmt.Errorf("peer %s at %d of %d (%s)", st.Phase, st.Cursor, bs.LastSeq, st.LastError)
		}
		return nil
	}, time.Minute).Should(Succeed(), "the peer agent to catch up")
	Eventually(func() error {
		resp, err := http.Post(base+"/v1/export", "", nil)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("POST /v1/export: %s", resp.Status)
		}
		return nil
	}, 30*time.Second).Should(Succeed())
	var obj string
	Eventually(func() error {
		st, err := get()
		if err != nil {
			return err
		}
		if st.LastExport == nil || st.LastExport.Cursor != bs.LastSeq {
			return fmt.Errorf("peer lastExport %+v (lastError %q)", st.LastExport, st.LastError)
		}
		obj = st.LastExport.Object
		return nil
	}, time.Minute).Should(Succeed(), "the peer's export at cursor %d", bs.LastSeq)
	p.Stop(stopGrace)
	return obj
}
