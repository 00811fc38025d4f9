package e2e

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// Scenario 5: kubectl apply refuses invalid KVFolds with a message naming the problem; what
// the API server cannot check (a missing Secret) is reported in a condition.
func describeInvalid() {
	Describe("invalid KVFolds", func() {
		It("are refused by kubectl apply with their messages", func() {
			base := func() *fold {
				return &fold{name: "invalid", bucket: "e2e-invalid", natsURL: suite.nats.url(), port: 7070}
			}
			cases := []struct {
				what     string
				manifest string
				want     string
			}{
				{"a bucket name with a dot", strings.Replace(base().manifest(), "bucket: e2e-invalid", "bucket: my.bucket", 1),
					"bucket must be a NATS KV bucket name: letters, digits, - and _ only"},
				{"overlapping prefixes", func() string { f := base(); f.prefixes = []string{"route.", "route.eu."}; return f.manifest() }(),
					"scope.prefixes must not overlap or repeat"},
				{"an http:// NATS URL", func() string { f := base(); f.natsURL = "http://127.0.0.1:4222"; return f.manifest() }(),
					"nats.urls: each URL must be nats://, tls://, ws:// or wss:// followed by a host"},
				{"credentials in the export URL", func() string {
					f := base()
					f.export = true
					return strings.Replace(f.manifest(), "url: \""+f.exportURL()+"\"", `url: "s3://AKIA:secret@folds/x"`, 1)
				}(), "export.url must not embed credentials: use export.credentialsSecretRef"},
				{"an unknown data retention", func() string { f := base(); f.retention = "Archive"; return f.manifest() }(),
					`spec.dataRetention: Unsupported value: "Archive": supported values: "Retain", "Delete"`},
			}
			for _, c := range cases {
				out, err := kubectlApply(c.manifest)
				Expect(err).To(HaveOccurred(), "kubectl apply accepted a KVFold with %s:\n%s", c.what, c.manifest)
				Expect(out).To(ContainSubstring(c.want), "kubectl apply of a KVFold with %s", c.what)
				fmt.Fprintf(GinkgoWriter, "%s: %s", c.what, out)
			}
			out, err := kubectl("get", "kvfold", "invalid", "-n", testNamespace, "--ignore-not-found", "-o", "name")
			Expect(err).NotTo(HaveOccurred())
			Expect(out).To(BeEmpty(), "a refused KVFold exists")
		})

		It("report a missing Secret in the Degraded condition and run no agent", func() {
			f := &fold{name: "nosecret", bucket: "e2e-nosecret", natsURL: suite.nats.url(), port: freePort(), credsSecret: "missing-creds"}
			f.apply()
			DeferCleanup(func() { f.delete(2 * time.Minute) })
			c := f.condition(v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec, time.Minute)
			Expect(c.Message).To(ContainSubstring(`spec.nats.credentialsSecretRef: Secret "missing-creds" not found in namespace "` + testNamespace + `"`))
			f.event(v1alpha1.EventDegraded, `Secret "missing-creds" not found`, time.Minute)
			Consistently(func() (int, error) {
				pods, err := f.pods()
				return len(pods), err
			}).Should(BeZero(), "agents run for a KVFold whose Secret is missing")
		})
	})
}
