package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// childKinds are the kinds of everything the operator creates for a KVFold.
var childKinds = []schema.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "DaemonSetList"},
	{Version: "v1", Kind: "PodList"},
	{Version: "v1", Kind: "ServiceList"},
	{Version: "v1", Kind: "ServiceAccountList"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleList"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBindingList"},
	{Group: "batch", Version: "v1", Kind: "JobList"},
	{Group: "coordination.k8s.io", Version: "v1", Kind: "LeaseList"},
}

// leftovers lists what is left of a KVFold in the cluster: labelled children and its node
// status objects.
func leftovers(name string) ([]string, error) {
	var left []string
	for _, gvk := range childKinds {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk)
		if err := kube.List(bg, l, client.InNamespace(testNamespace), client.MatchingLabels{v1alpha1.LabelFold: name}); err != nil {
			return nil, err
		}
		for _, o := range l.Items {
			left = append(left, strings.TrimSuffix(gvk.Kind, "List")+"/"+o.GetName())
		}
	}
	var nodes v1alpha1.KVFoldNodeList
	if err := kube.List(bg, &nodes, client.InNamespace(testNamespace)); err != nil {
		return nil, err
	}
	for _, n := range nodes.Items {
		if n.Spec.FoldName == name {
			left = append(left, "KVFoldNode/"+n.Name)
		}
	}
	return left, nil
}

// Scenario 6: deleting a KVFold honours dataRetention (Retain keeps the host data, Delete
// removes it on the node), both leave no object behind; then `helm uninstall` removes every
// object of the release. Helm keeps the CRDs (it never deletes crds/): the README says so.
func describeRetention() {
	Describe("deletion and helm uninstall", func() {
		It("honour dataRetention and leave nothing behind", func() {
			conn := connect(suite.nats.url())
			b, err := conn.CreateBucket(bg, kv.BucketConfig{Name: "e2e-retention"})
			Expect(err).NotTo(HaveOccurred())
			putN(b, "keep.", 30, "v1")
			putN(b, "purge.", 30, "v1")
			keep := &fold{name: "keep", bucket: "e2e-retention", natsURL: suite.nats.url(), port: freePort(), prefixes: []string{"keep."}, retention: "Retain"}
			purge := &fold{name: "purge", bucket: "e2e-retention", natsURL: suite.nats.url(), port: freePort(), prefixes: []string{"purge."}, retention: "Delete"}
			keep.apply()
			purge.apply()
			keep.readyPod(2 * time.Minute)
			purge.readyPod(2 * time.Minute)
			keep.caughtUp(b, time.Minute)
			purge.caughtUp(b, time.Minute)
			Expect(purge.hostDir()).To(BeADirectory())

			By("dataRetention Delete: the host data goes, with every child object")
			purge.delete(3 * time.Minute)
			_, err = os.Stat(purge.hostDir())
			Expect(errors.Is(err, fs.ErrNotExist)).To(BeTrue(), "the Delete fold's host data is still there: %v", err)
			Eventually(func() ([]string, error) { return leftovers(purge.name) }, 2*time.Minute).Should(BeEmpty())
			purge.event(v1alpha1.EventCleanupDone, "", time.Minute)

			By("dataRetention Retain: the host data stays, equal to the bucket; no object is left")
			want := bucketState(b, keep.prefixes)
			keep.delete(2 * time.Minute)
			Eventually(func() ([]string, error) { return leftovers(keep.name) }, 2*time.Minute).Should(BeEmpty())
			Expect(sameLines(want, keep.dump())).To(Succeed())
			Expect(os.RemoveAll(keep.hostDir())).To(Succeed())

			By("helm uninstall removes every object of the release")
			manifest, err := helm("get", "manifest", releaseName, "--namespace", releaseNamespace)
			Expect(err).NotTo(HaveOccurred())
			objs := manifestObjects(manifest)
			Expect(objs).NotTo(BeEmpty())
			out, err := helm("uninstall", releaseName, "--namespace", releaseNamespace, "--wait", "--timeout", "3m")
			Expect(err).NotTo(HaveOccurred(), out)
			Eventually(func() []string {
				var left []string
				for _, o := range objs {
					args := []string{"get", o.kind, o.name, "--ignore-not-found", "-o", "name"}
					if o.namespaced {
						args = append(args, "-n", releaseNamespace)
					}
					if out, err := kubectl(args...); err != nil || strings.TrimSpace(out) != "" {
						left = append(left, fmt.Sprintf("%s/%s %s %v", o.kind, o.name, strings.TrimSpace(out), err))
					}
				}
				out, _ := kubectl("get", "pods", "-n", releaseNamespace, "-o", "name")
				if strings.TrimSpace(out) != "" {
					left = append(left, "pods: "+out)
				}
				return left
			}, 2*time.Minute).Should(BeEmpty(), "objects of the release left after helm uninstall")
			out, err = kubectl("get", "crd", "kvfolds.slipstream.dev", "kvfoldnodes.slipstream.dev", "-o", "name")
			Expect(err).NotTo(HaveOccurred(), "Helm keeps the CRDs of crds/")
			fmt.Fprintf(GinkgoWriter, "kept by Helm by design: %s", out)
		})
	})
}

type manifestObject struct {
	kind, name string
	namespaced bool
}

// manifestObjects lists kind and name of each document of `helm get manifest`.
func manifestObjects(manifest string) []manifestObject {
	var objs []manifestObject
	for _, doc := range strings.Split(manifest, "\n---") {
		var o manifestObject
		inMeta := false
		for _, l := range strings.Split(doc, "\n") {
			switch {
			case strings.HasPrefix(l, "kind: "):
				o.kind = strings.TrimSpace(strings.TrimPrefix(l, "kind: "))
			case strings.HasPrefix(l, "metadata:"):
				inMeta = true
			case inMeta && strings.HasPrefix(l, "  name: ") && o.name == "":
				o.name = strings.Trim(strings.TrimSpace(strings.TrimPrefix(l, "  name: ")), `"`)
			case inMeta && strings.HasPrefix(l, "  namespace: "):
				o.namespaced = true
			case len(l) > 0 && l[0] != ' ' && !strings.HasPrefix(l, "metadata:"):
				inMeta = false
			}
		}
		if o.kind != "" && o.name != "" {
			objs = append(objs, o)
		}
	}
	return objs
}
