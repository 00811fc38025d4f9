package controller

import (
	"path"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

var _ = Describe("KVFold children", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		createSecret(ns, "nats-creds", map[string]string{"user.creds": "-----BEGIN NATS USER JWT-----"})
		createSecret(ns, "nats-tls", map[string]string{"ca.crt": "ca"})
		createSecret(ns, "s3-creds", map[string]string{"AWS_ACCESS_KEY_ID": "id"})
	})

	newRoutes := func() *v1alpha1.KVFold {
		f := validFold(ns, "routes")
		f.Spec.NATS.CredentialsSecretRef = &v1alpha1.SecretKeyReference{Name: "nats-creds"}
		f.Spec.NATS.TLSSecretRef = &v1alpha1.TLSSecretReference{Name: "nats-tls"}
		f.Spec.Scope = &v1alpha1.ScopeSpec{Prefixes: []string{"route.", "cert."}}
		f.Spec.Batch = v1alpha1.BatchSpec{Window: &metav1.Duration{Duration: 20e6}, MaxUpdates: ptr.To[int32](200)}
		f.Spec.Export = &v1alpha1.ExportSpec{URL: "s3://folds/routes", CredentialsSecretRef: &v1alpha1.SecretReference{Name: "s3-creds"}}
		f.Spec.Placement.NodeSelector = map[string]string{"node-role/edge": "true"}
		Expect(k8sClient.Create(bg, f)).To(Succeed())
		return f
	}

	It("creates the agent DaemonSet as the spec says", func() {
		f := newRoutes()
		ds := &appsv1.DaemonSet{}
		Eventually(func() error { return k8sClient.Get(bg, key(ns, "routes"), ds) }).Should(Succeed())

		Expect(metav1.IsControlledBy(ds, f)).To(BeTrue(), "DaemonSet not owned by the KVFold")
		Expect(ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge).To(Equal(ptr.To(intstr.FromInt32(0))))
		Expect(ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable).To(Equal(ptr.To(intstr.FromInt32(1))))
		pod := ds.Spec.Template.Spec
		Expect(*pod.TerminationGracePeriodSeconds).To(BeEquivalentTo(60))
		Expect(pod.ServiceAccountName).To(Equal("routes-agent"))
		Expect(pod.NodeSelector).To(Equal(map[string]string{"node-role/edge": "true"}))

		var data *corev1.HostPathVolumeSource
		for _, v := range pod.Volumes {
			if v.Name == "data" {
				data = v.HostPath
			}
		}
		Expect(data).NotTo(BeNil())
		Expect(data.Path).To(Equal(path.Join("/var/lib/slipstream", ns, "routes")))
		Expect(*data.Type).To(Equal(corev1.HostPathDirectoryOrCreate))

		c := pod.Containers[0]
		Expect(c.Image).To(Equal(testAgentImage), "empty spec.agent.image must mean the manager's default")
		Expect(c.Args).To(ContainElements("run", "--nats-url=nats://nats.nats.svc:4222", "--bucket=routes",
			"--prefix=route.", "--prefix=cert.", "--backend=pebble", "--batch-window=20ms", "--batch-max=200",
			"--creds-file=/etc/slipstream/nats/user.creds", "--listen=0.0.0.0:7070"))
		Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
		Expect(c.ReadinessProbe.HTTPGet.Port).To(Equal(intstr.FromString("api")))
		Expect(c.Ports).To(ContainElement(HaveField("ContainerPort", BeEquivalentTo(7070))))
		Expect(c.EnvFrom).To(ContainElement(HaveField("SecretRef.Name", "s3-creds")))
		Expect(c.Env).To(ContainElement(corev1.EnvVar{Name: EnvFoldName, Value: "routes"}))
		Expect(c.Env).To(ContainElement(HaveField("Name", EnvNodeName)))
		Expect(c.Env).To(ContainElement(corev1.EnvVar{Name: EnvTLSCAFile, Value: "/etc/slipstream/tls/ca.crt"}))
		Expect(*c.SecurityContext.AllowPrivilegeEscalation).To(BeFalse())
		var secrets []string
		for _, v := range pod.Volumes {
			if v.Secret != nil {
				secrets = append(secrets, v.Secret.SecretName)
			}
		}
		Expect(secrets).To(ConsistOf("nats-creds", "nats-tls"))
	})

	It("creates the Service, ServiceAccount, Role, RoleBinding and export Lease, and the finalizer", func() {
		f := newRoutes()
		svc := &corev1.Service{}
		Eventually(func() error { return k8sClient.Get(bg, key(ns, "routes"), svc) }).Should(Succeed())
		Expect(*svc.Spec.InternalTrafficPolicy).To(Equal(corev1.ServiceInternalTrafficPolicyLocal))
		Expect(svc.Spec.Selector).To(Equal(agentSelector(f)))
		Expect(svc.Spec.Ports[0].Port).To(BeEquivalentTo(7070))

		for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}} {
			Eventually(func() error { return k8sClient.Get(bg, key(ns, "routes-agent"), obj) }).Should(Succeed())
			Expect(metav1.IsControlledBy(obj, f)).To(BeTrue())
		}
		lease := &coordinationv1.Lease{}
		Eventually(func() error { return k8sClient.Get(bg, key(ns, "routes-export"), lease) }).Should(Succeed())
		Expect(metav1.IsControlledBy(lease, f)).To(BeTrue())
		Eventually(func() []string { return getFold(ns, "routes").Finalizers }).Should(ContainElement(v1alpha1.Finalizer))
	})

	It("rolls out spec changes to the DaemonSet and the Service", func() {
		newRoutes()
		ds := &appsv1.DaemonSet{}
		Eventually(func() error { return k8sClient.Get(bg, key(ns, "routes"), ds) }).Should(Succeed())
		gen := ds.Generation

		Eventually(func() error {
			f := getFold(ns, "routes")
			f.Spec.Batch.MaxUpdates = ptr.To[int32](1000)
			f.Spec.Agent.Image = "registry.test/agent:v2"
			f.Spec.Agent.Port = 7171
			return k8sClient.Update(bg, f)
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(bg, key(ns, "routes"), ds)).To(Succeed())
			g.Expect(ds.Generation).To(BeNumerically(">", gen))
			c := ds.Spec.Template.Spec.Containers[0]
			g.Expect(c.Image).To(Equal("registry.test/agent:v2"))
			g.Expect(c.Args).To(ContainElements("--batch-max=1000", "--listen=0.0.0.0:7171"))
		}).Should(Succeed())
		Eventually(func() int32 {
			svc := &corev1.Service{}
			Expect(k8sClient.Get(bg, key(ns, "routes"), svc)).To(Succeed())
			return svc.Spec.Ports[0].Port
		}).Should(BeEquivalentTo(7171))
	})

	It("makes no writes to children in a steady state", func() {
		newRoutes()
		setDaemonSetStatus(ns, "routes", 0, 0, 0)
		expectCondition(ns, "routes", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNoNodes, "no node matches spec.placement")
		versions := func() []string {
			var out []string
			for _, o := range []struct {
				obj  client.Object
				name string
			}{{&appsv1.DaemonSet{}, "routes"}, {&corev1.Service{}, "routes"}, {&corev1.ServiceAccount{}, "routes-agent"},
				{&rbacv1.Role{}, "routes-agent"}, {&rbacv1.RoleBinding{}, "routes-agent"}, {&coordinationv1.Lease{}, "routes-export"}} {
				Expect(k8sClient.Get(bg, key(ns, o.name), o.obj)).To(Succeed())
				out = append(out, o.obj.GetResourceVersion())
			}
			return out
		}
		before := versions()
		// A metadata-only change of the fold makes the controller reconcile everything again.
		Eventually(func() error {
			f := getFold(ns, "routes")
			f.Annotations = map[string]string{"test/poke": "1"}
			return k8sClient.Update(bg, f)
		}).Should(Succeed())
		Consistently(versions).Should(Equal(before))
	})

	It("recreates a deleted DaemonSet", func() {
		newRoutes()
		ds := &appsv1.DaemonSet{}
		Eventually(func() error { return k8sClient.Get(bg, key(ns, "routes"), ds) }).Should(Succeed())
		uid := ds.UID
		Expect(k8sClient.Delete(bg, ds)).To(Succeed())
		Eventually(func() types.UID {
			fresh := &appsv1.DaemonSet{}
			if err := k8sClient.Get(bg, key(ns, "routes"), fresh); err != nil {
				return uid
			}
			return fresh.UID
		}).ShouldNot(Equal(uid))
	})
})
