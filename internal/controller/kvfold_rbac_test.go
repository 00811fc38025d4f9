package controller

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

var _ = Describe("Agent RBAC", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		nodes := addNodes(ns, map[string]string{"fleet": ns}, 1)
		createSecret(ns, "a-creds", map[string]string{"user.creds": "x"})
		createSecret(ns, "b-creds", map[string]string{"user.creds": "x"})
		createSecret(ns, "unrelated", map[string]string{"password": "x"})
		for _, name := range []string{"a", "b"} {
			f := validFold(ns, name)
			f.Spec.NATS.CredentialsSecretRef = &v1alpha1.SecretKeyReference{Name: name + "-creds"}
			f.Spec.Placement.NodeSelector = map[string]string{"fleet": ns}
			Expect(k8sClient.Create(bg, f)).To(Succeed())
			runAgents(ns, name, nodes...)
		}
		// Wait until fold a's Role names its node object.
		Eventually(func() bool {
			return allowed(ns, "a-agent", attrs(ns, "patch", "slipstream.dev", "kvfoldnodes", "status", v1alpha1.KVFoldNodeName("a", nodes[0])))
		}).Should(BeTrue())
	})

	DescribeTable("fold a's agent ServiceAccount may do only what an agent needs",
		func(verb, group, resource, sub, name string, want bool) {
			a := attrs(ns, verb, group, resource, sub, name)
			if name == "NODE-A" {
				a.Name = v1alpha1.KVFoldNodeName("a", ns+"-n1")
			}
			if name == "NODE-B" {
				a.Name = v1alpha1.KVFoldNodeName("b", ns+"-n1")
			}
			Expect(allowed(ns, "a-agent", a)).To(Equal(want), "%s %s/%s %s", verb, resource, sub, a.Name)
		},
		Entry("get its KVFold", "get", "slipstream.dev", "kvfolds", "", "a", true),
		Entry("watch its KVFold", "watch", "slipstream.dev", "kvfolds", "", "a", true),
		Entry("get another fold", "get", "slipstream.dev", "kvfolds", "", "b", false),
		Entry("list all folds", "list", "slipstream.dev", "kvfolds", "", "", false),
		Entry("update its KVFold", "update", "slipstream.dev", "kvfolds", "", "a", false),
		Entry("patch its KVFold's status", "patch", "slipstream.dev", "kvfolds", "status", "a", false),
		Entry("get its referenced Secret", "get", "", "secrets", "", "a-creds", true),
		Entry("get another fold's Secret", "get", "", "secrets", "", "b-creds", false),
		Entry("get an unrelated Secret", "get", "", "secrets", "", "unrelated", false),
		Entry("list Secrets", "list", "", "secrets", "", "", false),
		Entry("patch its node status", "patch", "slipstream.dev", "kvfoldnodes", "status", "NODE-A", true),
		Entry("get its node object", "get", "slipstream.dev", "kvfoldnodes", "", "NODE-A", true),
		Entry("patch another fold's node status", "patch", "slipstream.dev", "kvfoldnodes", "status", "NODE-B", false),
		Entry("get another fold's node status", "get", "slipstream.dev", "kvfoldnodes", "status", "NODE-B", false),
		Entry("create node objects", "create", "slipstream.dev", "kvfoldnodes", "", "", false),
		Entry("delete its node object", "delete", "slipstream.dev", "kvfoldnodes", "", "NODE-A", false),
		Entry("create events", "create", "events.k8s.io", "events", "", "", true),
		Entry("create core events", "create", "", "events", "", "", true),
		Entry("update its export Lease", "update", "coordination.k8s.io", "leases", "", "a-export", true),
		Entry("update another fold's Lease", "update", "coordination.k8s.io", "leases", "", "b-export", false),
		Entry("create Leases", "create", "coordination.k8s.io", "leases", "", "", false),
		Entry("create Pods", "create", "", "pods", "", "", false),
	)
})

func attrs(ns, verb, group, resource, sub, name string) *authorizationv1.ResourceAttributes {
	return &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: sub, Name: name}
}

// allowed asks the API server's authorizer (RBAC) whether a ServiceAccount may do a thing.
func allowed(ns, sa string, a *authorizationv1.ResourceAttributes) bool {
	GinkgoHelper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               "system:serviceaccount:" + ns + ":" + sa,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: a,
	}}
	Expect(k8sClient.Create(bg, sar)).To(Succeed())
	return sar.Status.Allowed
}
