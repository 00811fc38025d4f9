package controller

import (
	"context"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

var _ = Describe("KVFold admission", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	DescribeTable("rejects an invalid KVFold with a message naming the problem",
		func(mutate func(*v1alpha1.KVFold), want string) {
			f := validFold(ns, "invalid")
			mutate(f)
			err := k8sClient.Create(context.Background(), f)
			Expect(err).To(HaveOccurred(), "the API server accepted an invalid KVFold")
			Expect(err.Error()).To(ContainSubstring(want))
		},
		Entry("bucket with a dot", func(f *v1alpha1.KVFold) { f.Spec.Bucket = "my.bucket" },
			"bucket must be a NATS KV bucket name: letters, digits, - and _ only"),
		Entry("empty bucket", func(f *v1alpha1.KVFold) { f.Spec.Bucket = "" },
			"spec.bucket: Invalid value"),
		Entry("no NATS URL", func(f *v1alpha1.KVFold) { f.Spec.NATS.URLs = []string{} },
			"spec.nats.urls: Invalid value: 0: spec.nats.urls in body should have at least 1 items"),
		Entry("http NATS URL", func(f *v1alpha1.KVFold) { f.Spec.NATS.URLs = []string{"http://nats:4222"} },
			"nats.urls: each URL must be nats://, tls://, ws:// or wss:// followed by a host"),
		Entry("NATS URL without a host", func(f *v1alpha1.KVFold) { f.Spec.NATS.URLs = []string{"nats://"} },
			"nats.urls: each URL must be nats://, tls://, ws:// or wss:// followed by a host"),
		Entry("two NATS URLs in one item", func(f *v1alpha1.KVFold) { f.Spec.NATS.URLs = []string{"nats://a:4222,nats://b:4222"} },
			"nats.urls: one URL per item, without commas or spaces"),
		Entry("credentials in a NATS URL", func(f *v1alpha1.KVFold) { f.Spec.NATS.URLs = []string{"nats://app:s3cret@nats:4222"} },
			"nats.urls must not embed credentials"),
		Entry("two NATS credentials", func(f *v1alpha1.KVFold) {
			f.Spec.NATS.CredentialsSecretRef = &v1alpha1.SecretKeyReference{Name: "creds"}
			f.Spec.NATS.TokenSecretRef = &v1alpha1.SecretKeyReference{Name: "token"}
		}, "nats: set at most one of credentialsSecretRef, nkeySecretRef, userPasswordSecretRef and tokenSecretRef"),
		Entry("accountRef with a TLS Secret", func(f *v1alpha1.KVFold) {
			f.Spec.NATS.AccountRef = &v1alpha1.AccountReference{Name: "edge"}
			f.Spec.NATS.TLSSecretRef = &v1alpha1.TLSSecretReference{Name: "tls"}
		}, "nats.accountRef takes credentials and TLS from the NACK Account"),
		Entry("Secret name that is not a DNS name", func(f *v1alpha1.KVFold) {
			f.Spec.NATS.CredentialsSecretRef = &v1alpha1.SecretKeyReference{Name: "Bad_Name"}
		}, "spec.nats.credentialsSecretRef.name in body should match"),
		Entry("prefix without the trailing dot", func(f *v1alpha1.KVFold) { f.Spec.Scope = &v1alpha1.ScopeSpec{Prefixes: []string{"route"}} },
			"scope.prefixes: each prefix must be whole key tokens"),
		Entry("prefix with a wildcard", func(f *v1alpha1.KVFold) { f.Spec.Scope = &v1alpha1.ScopeSpec{Prefixes: []string{"route.*."}} },
			"scope.prefixes: each prefix must be whole key tokens"),
		Entry("prefix with an empty token", func(f *v1alpha1.KVFold) { f.Spec.Scope = &v1alpha1.ScopeSpec{Prefixes: []string{"route..eu."}} },
			"scope.prefixes: each prefix must be whole key tokens"),
		Entry("overlapping prefixes", func(f *v1alpha1.KVFold) {
			f.Spec.Scope = &v1alpha1.ScopeSpec{Prefixes: []string{"cert.", "route.", "route.eu."}}
		}, "scope.prefixes must not overlap or repeat"),
		Entry("repeated prefix", func(f *v1alpha1.KVFold) { f.Spec.Scope = &v1alpha1.ScopeSpec{Prefixes: []string{"route.", "route."}} },
			"scope.prefixes must not overlap or repeat"),
		Entry("scope without prefixes", func(f *v1alpha1.KVFold) { f.Spec.Scope = &v1alpha1.ScopeSpec{Prefixes: []string{}} },
			"spec.scope.prefixes in body should have at least 1 items"),
		Entry("unknown backend", func(f *v1alpha1.KVFold) { f.Spec.Backend.Type = "rocksdb" },
			`spec.backend.type: Unsupported value: "rocksdb": supported values: "pebble", "memory"`),
		Entry("pebble tuning on the memory backend", func(f *v1alpha1.KVFold) {
			f.Spec.Backend = v1alpha1.BackendSpec{Type: v1alpha1.BackendMemory, Pebble: &v1alpha1.PebbleSpec{Sync: ptr.To(true)}}
		}, "backend.pebble is only valid with type pebble"),
		Entry("relative host path", func(f *v1alpha1.KVFold) { f.Spec.Storage.HostPath = "var/lib/slipstream" },
			"storage.hostPath must be a clean absolute path other than /"),
		Entry("host path with ..", func(f *v1alpha1.KVFold) { f.Spec.Storage.HostPath = "/var/lib/../../etc" },
			"storage.hostPath must be a clean absolute path other than /"),
		Entry("host path /", func(f *v1alpha1.KVFold) { f.Spec.Storage.HostPath = "/" },
			"storage.hostPath must be a clean absolute path other than /"),
		Entry("batch window too long", func(f *v1alpha1.KVFold) { f.Spec.Batch.Window = &metav1.Duration{Duration: 3600e9} },
			"batch.window must be a duration from 1us to 10s, e.g. 10ms"),
		Entry("batch maxUpdates 0", func(f *v1alpha1.KVFold) { f.Spec.Batch.MaxUpdates = ptr.To[int32](0) },
			"spec.batch.maxUpdates in body should be greater than or equal to 1"),
		Entry("http export URL", func(f *v1alpha1.KVFold) {
			f.Spec.Export = &v1alpha1.ExportSpec{URL: "https://storage.example.com/folds"}
		},
			"export.url must be an s3://, gs://, azblob:// or file:// URL"),
		Entry("credentials in the export URL", func(f *v1alpha1.KVFold) { f.Spec.Export = &v1alpha1.ExportSpec{URL: "s3://AKIA:secret@folds/routes"} },
			"export.url must not embed credentials: use export.credentialsSecretRef"),
		Entry("export retain 0", func(f *v1alpha1.KVFold) {
			f.Spec.Export = &v1alpha1.ExportSpec{URL: "s3://folds/routes", Retain: ptr.To[int32](0)}
		},
			"spec.export.retain in body should be greater than or equal to 1"),
		Entry("unknown data retention", func(f *v1alpha1.KVFold) { f.Spec.DataRetention = "Archive" },
			`spec.dataRetention: Unsupported value: "Archive": supported values: "Retain", "Delete"`),
		Entry("agent port out of range", func(f *v1alpha1.KVFold) { f.Spec.Agent.Port = 70000 },
			"spec.agent.port in body should be less than or equal to 65535"),
		Entry("name too long for the DaemonSet", func(f *v1alpha1.KVFold) { f.Name = strings.Repeat("a", 53) },
			"metadata.name must be at most 52 characters"),
	)

	It("rejects a batch window that is not a duration", func() {
		// metav1.Duration cannot carry a bad string from Go; send raw JSON as kubectl would.
		f := validFold(ns, "bad-window")
		f.Spec.Batch.Window = &metav1.Duration{Duration: 10e6}
		f.APIVersion, f.Kind = v1alpha1.GroupVersion.String(), "KVFold"
		raw, err := yaml.Marshal(f)
		Expect(err).NotTo(HaveOccurred())
		bad := strings.Replace(string(raw), "window: 10ms", "window: fast", 1)
		Expect(bad).To(ContainSubstring("window: fast"))
		u := unstructuredFromYAML(bad)
		err = k8sClient.Create(context.Background(), u)
		Expect(err).To(MatchError(ContainSubstring("batch.window must be a duration from 1us to 10s")))
	})

	It("fills in the defaults", func() {
		f := validFold(ns, "defaults")
		f.Spec.Export = &v1alpha1.ExportSpec{URL: "s3://folds/routes"}
		Expect(k8sClient.Create(context.Background(), f)).To(Succeed())
		Expect(f.Spec.Backend.Type).To(Equal(v1alpha1.BackendPebble))
		Expect(f.Spec.Storage.HostPath).To(Equal(v1alpha1.DefaultHostPath))
		Expect(f.Spec.Agent.Port).To(BeEquivalentTo(v1alpha1.DefaultAgentPort))
		Expect(f.Spec.DataRetention).To(Equal(v1alpha1.RetainData))
		Expect(f.Spec.Export.Schedule).To(Equal(v1alpha1.DefaultExportSchedule))
		Expect(*f.Spec.Export.Retain).To(BeEquivalentTo(v1alpha1.DefaultExportRetain))
	})

	It("accepts the sample KVFold of config/samples", func() {
		raw, err := os.ReadFile("../../config/samples/slipstream_v1alpha1_kvfold.yaml")
		Expect(err).NotTo(HaveOccurred())
		var found bool
		for _, doc := range strings.Split(string(raw), "\n---\n") {
			if !strings.Contains(doc, "kind: KVFold") {
				continue
			}
			found = true
			var f v1alpha1.KVFold
			Expect(yaml.UnmarshalStrict([]byte(doc), &f)).To(Succeed())
			f.Namespace = ns
			Expect(k8sClient.Create(context.Background(), &f)).To(Succeed())
			Expect(f.Spec.Scope.Prefixes).To(ConsistOf("route.", "cert.", "wasm."))
			Expect(f.Spec.Backend.Pebble.CacheSize.Equal(resource.MustParse("64Mi"))).To(BeTrue())
		}
		Expect(found).To(BeTrue(), "no KVFold in the sample")
	})

	DescribeTable("refuses changes that would corrupt the folds on the nodes",
		func(mutate func(*v1alpha1.KVFold), want string) {
			f := validFold(ns, "immutable")
			f.Spec.Scope = &v1alpha1.ScopeSpec{Prefixes: []string{"route."}}
			Expect(k8sClient.Create(context.Background(), f)).To(Succeed())
			// The controller adds its finalizer meanwhile: retry conflicts on a fresh copy.
			Eventually(func() error {
				cur := getFold(ns, "immutable")
				mutate(cur)
				return k8sClient.Update(context.Background(), cur)
			}).Should(MatchError(ContainSubstring(want)))
		},
		Entry("bucket", func(f *v1alpha1.KVFold) { f.Spec.Bucket = "other" },
			"bucket is immutable: create a new KVFold for another bucket"),
		Entry("scope prefixes", func(f *v1alpha1.KVFold) { f.Spec.Scope.Prefixes = []string{"route.", "cert."} },
			"scope is immutable"),
		Entry("scope removed", func(f *v1alpha1.KVFold) { f.Spec.Scope = nil },
			"scope is immutable"),
		Entry("backend type", func(f *v1alpha1.KVFold) { f.Spec.Backend.Type = v1alpha1.BackendMemory },
			"backend.type is immutable"),
		Entry("host path", func(f *v1alpha1.KVFold) { f.Spec.Storage.HostPath = "/srv/slipstream" },
			"storage.hostPath is immutable"),
	)

	It("allows tuning changes on an existing fold", func() {
		f := validFold(ns, "tunable")
		Expect(k8sClient.Create(context.Background(), f)).To(Succeed())
		Eventually(func() error {
			cur := getFold(ns, "tunable")
			cur.Spec.Backend.Pebble = &v1alpha1.PebbleSpec{Sync: ptr.To(true)}
			cur.Spec.Batch.MaxUpdates = ptr.To[int32](500)
			cur.Spec.DataRetention = v1alpha1.DeleteData
			return k8sClient.Update(context.Background(), cur)
		}).Should(Succeed())
		Expect(getFold(ns, "tunable").Spec.Batch.MaxUpdates).To(Equal(ptr.To[int32](500)))
	})

	It("keeps a KVFoldNode's spec immutable", func() {
		n := &v1alpha1.KVFoldNode{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.KVFoldNodeName("f", "n1")},
			Spec:       v1alpha1.KVFoldNodeSpec{FoldName: "f", NodeName: "n1"},
		}
		Expect(k8sClient.Create(context.Background(), n)).To(Succeed())
		n.Spec.NodeName = "n2"
		Expect(k8sClient.Update(context.Background(), n)).To(MatchError(ContainSubstring("spec is immutable")))
	})
})

var _ = Describe("KVFoldNodeName", func() {
	It("is <fold>.<node> when that fits, else a bounded prefix plus a hash", func() {
		Expect(v1alpha1.KVFoldNodeName("routes", "node-1")).To(Equal("routes.node-1"))
		long := strings.Repeat("n", 253)
		a, b := v1alpha1.KVFoldNodeName("routes", long), v1alpha1.KVFoldNodeName("routes", long+"x")
		Expect(len(a)).To(BeNumerically("<=", 253))
		Expect(a).NotTo(Equal(b))
		Expect(a).To(HavePrefix("routes.nnn"))
	})
})
