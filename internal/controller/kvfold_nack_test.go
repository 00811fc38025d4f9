package controller

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

var _ = Describe("NACK Account interop (spec.nats.accountRef)", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	createAccount := func(name, spec string) {
		GinkgoHelper()
		doc := "apiVersion: jetstream.nats.io/v1beta2\nkind: Account\nmetadata:\n  name: " + name +
			"\n  namespace: " + ns + "\nspec:\n" + spec
		Expect(k8sClient.Create(bg, unstructuredFromYAML(doc))).To(Succeed())
	}
	newFold := func() {
		GinkgoHelper()
		f := validFold(ns, "routes")
		f.Spec.NATS.AccountRef = &v1alpha1.AccountReference{Name: "edge"}
		Expect(k8sClient.Create(bg, f)).To(Succeed())
	}
	agentPod := func() corev1.PodSpec {
		GinkgoHelper()
		ds := &appsv1.DaemonSet{}
		Eventually(func() error { return k8sClient.Get(bg, key(ns, "routes"), ds) }).Should(Succeed())
		return ds.Spec.Template.Spec
	}

	It("mounts the Account's creds and TLS Secrets under their own key names and lets the agent read only them", func() {
		createSecret(ns, "edge-creds", map[string]string{"edge.creds": "-----BEGIN NATS USER JWT-----"})
		createSecret(ns, "edge-tls", map[string]string{"root.pem": "ca", "client.pem": "c", "client-key.pem": "k"})
		createAccount("edge", `  servers: ["nats://elsewhere:4222"]
  creds: {secret: {name: edge-creds}, file: edge.creds}
  tls: {secret: {name: edge-tls}, ca: root.pem, cert: client.pem, key: client-key.pem}
`)
		newFold()
		pod := agentPod()
		c := pod.Containers[0]
		Expect(c.Args).To(ContainElements("--creds-file=/etc/slipstream/nats/edge.creds", "--nats-url=nats://nats.nats.svc:4222"),
			"credentials from the Account, URLs from the KVFold")
		Expect(c.Env).To(ContainElements(
			corev1.EnvVar{Name: EnvTLSCAFile, Value: "/etc/slipstream/tls/root.pem"},
			corev1.EnvVar{Name: EnvTLSCertFile, Value: "/etc/slipstream/tls/client.pem"},
			corev1.EnvVar{Name: EnvTLSKeyFile, Value: "/etc/slipstream/tls/client-key.pem"}))
		var secrets []string
		for _, v := range pod.Volumes {
			if v.Secret != nil {
				secrets = append(secrets, v.Secret.SecretName)
			}
		}
		Expect(secrets).To(ConsistOf("edge-creds", "edge-tls"))

		role := &rbacv1.Role{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(bg, key(ns, "routes-agent"), role)).To(Succeed())
			var names []string
			for _, r := range role.Rules {
				if len(r.Resources) == 1 && r.Resources[0] == "secrets" {
					names = append(names, r.ResourceNames...)
				}
			}
			g.Expect(names).To(ConsistOf("edge-creds", "edge-tls"))
		}).Should(Succeed())
		expectCondition(ns, "routes", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected, "")
	})

	It("maps user/password and token Accounts onto the agent's credential files", func() {
		createSecret(ns, "edge-user", map[string]string{"u": "alice", "p": "secret"})
		createAccount("edge", "  user: {secret: {name: edge-user}, user: u, password: p}\n")
		newFold()
		Expect(agentPod().Containers[0].Env).To(ContainElements(
			corev1.EnvVar{Name: EnvUserFile, Value: "/etc/slipstream/nats/u"},
			corev1.EnvVar{Name: EnvPasswordFile, Value: "/etc/slipstream/nats/p"}))

		Expect(k8sClient.Delete(bg, getFold(ns, "routes"))).To(Succeed())
		createSecret(ns, "edge-token", map[string]string{"tok": "t0k"})
		createAccount("edge2", "  token: {secret: {name: edge-token}, token: tok}\n")
		f := validFold(ns, "routes2")
		f.Spec.NATS.AccountRef = &v1alpha1.AccountReference{Name: "edge2"}
		Expect(k8sClient.Create(bg, f)).To(Succeed())
		ds := &appsv1.DaemonSet{}
		Eventually(func() error { return k8sClient.Get(bg, key(ns, "routes2"), ds) }).Should(Succeed())
		Expect(ds.Spec.Template.Spec.Containers[0].Env).To(ContainElement(
			corev1.EnvVar{Name: EnvNATSTokenFile, Value: "/etc/slipstream/nats/tok"}))
	})

	It("reports a missing Account, then runs the agents once it appears", func() {
		newFold()
		expectCondition(ns, "routes", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec,
			`spec.nats.accountRef: NACK Account "edge" not found in namespace "`+ns+`"`)
		Consistently(func() bool {
			return k8sClient.Get(bg, key(ns, "routes"), &appsv1.DaemonSet{}) == nil
		}, "300ms").Should(BeFalse(), "no agents without credentials")

		createSecret(ns, "edge-creds", map[string]string{"user.creds": "x"})
		createAccount("edge", "  creds: {secret: {name: edge-creds}}\n")
		// Account changes are picked up at the next resync (accountResync); touch the fold to
		// reconcile now rather than wait a minute.
		f := getFold(ns, "routes")
		f.Annotations = map[string]string{"touch": "1"}
		Expect(k8sClient.Update(bg, f)).To(Succeed())
		Expect(agentPod().Containers[0].Args).To(ContainElement("--creds-file=/etc/slipstream/nats/user.creds"))
	})

	It("reports an Account whose Secret is missing or that sets two credential kinds", func() {
		createAccount("edge", "  creds: {secret: {name: nope}}\n  token: {secret: {name: nope-too}}\n")
		newFold()
		expectCondition(ns, "routes", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec,
			"sets more than one of spec.creds, spec.token and spec.user")
	})

	It("names the Account when one of its Secrets does not exist", func() {
		createAccount("edge", "  creds: {secret: {name: gone}}\n")
		newFold()
		expectCondition(ns, "routes", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec,
			`spec.nats.accountRef (NACK Account "edge", as credentialsSecretRef): Secret "gone" not found`)
	})
})

var _ = Describe("natsFromAccount", func() {
	It("rejects blocks without a Secret and keys that cannot be file names", func() {
		var a nackAccountSpec
		Expect(yaml.Unmarshal([]byte(`{"creds": {"file": "x"}, "tls": {"secret": {"name": "t"}, "ca": "../etc/passwd"}}`), &a)).To(Succeed())
		_, problems := natsFromAccount("acct", &a)
		Expect(strings.Join(problems, "\n")).To(And(
			ContainSubstring("acct: spec.creds has no secret.name"),
			ContainSubstring(`acct: "../etc/passwd" is not a valid Secret key`)))
	})
})
