package controller

import (
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

var _ = Describe("KVFold specs CEL cannot check", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })
	noDaemonSet := func() bool {
		return apierrors.IsNotFound(k8sClient.Get(bg, key(ns, "routes"), &appsv1.DaemonSet{}))
	}

	It("reports a missing Secret as InvalidSpec, runs no agents, and recovers when it appears", func() {
		f := validFold(ns, "routes")
		f.Spec.NATS.CredentialsSecretRef = &v1alpha1.SecretKeyReference{Name: "nats-creds", Key: "edge.creds"}
		Expect(k8sClient.Create(bg, f)).To(Succeed())
		expectCondition(ns, "routes", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec,
			`spec.nats.credentialsSecretRef: Secret "nats-creds" not found in namespace "`+ns+`"`)
		expectEvent(ns, "routes", v1alpha1.EventDegraded, `Secret "nats-creds" not found`)
		Consistently(noDaemonSet).Should(BeTrue())

		createSecret(ns, "nats-creds", map[string]string{"edge.creds": "x"})
		expectCondition(ns, "routes", v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected, "")
		Eventually(noDaemonSet).Should(BeFalse())
	})

	It("reports a bad cron schedule as InvalidSpec", func() {
		f := validFold(ns, "routes")
		f.Spec.Export = &v1alpha1.ExportSpec{URL: "s3://folds/routes", Schedule: "every 5 minutes"}
		Expect(k8sClient.Create(bg, f)).To(Succeed())
		expectCondition(ns, "routes", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec,
			`spec.export.schedule "every 5 minutes" is not a cron schedule`)
		Consistently(noDaemonSet).Should(BeTrue())
	})

	It("reports a cache size out of range as InvalidSpec", func() {
		f := validFold(ns, "routes")
		Expect(k8sClient.Create(bg, f)).To(Succeed())
		Eventually(noDaemonSet).Should(BeFalse())
		Eventually(func() error {
			f := getFold(ns, "routes")
			q := resourceMust("100Ki")
			f.Spec.Backend.Pebble = &v1alpha1.PebbleSpec{CacheSize: &q}
			return k8sClient.Update(bg, f)
		}).Should(Succeed())
		expectCondition(ns, "routes", v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec,
			"spec.backend.pebble.cacheSize 100Ki is out of range (1Mi..64Gi)")
	})
})
