package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// agentNodes are the nodes that run (or are about to run) an agent Pod of the fold.
func (r *KVFoldReconciler) agentNodes(ctx context.Context, fold *v1alpha1.KVFold) (map[string]bool, error) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(fold.Namespace), client.MatchingLabels(agentSelector(fold))); err != nil {
		return nil, fmt.Errorf("list agent pods: %w", err)
	}
	nodes := map[string]bool{}
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" {
			nodes[p.Spec.NodeName] = true
		}
	}
	return nodes, nil
}

// listNodeObjects lists the fold's KVFoldNodes.
func (r *KVFoldReconciler) listNodeObjects(ctx context.Context, fold *v1alpha1.KVFold) ([]v1alpha1.KVFoldNode, error) {
	var list v1alpha1.KVFoldNodeList
	if err := r.List(ctx, &list, client.InNamespace(fold.Namespace), client.MatchingLabels{v1alpha1.LabelFold: fold.Name}); err != nil {
		return nil, fmt.Errorf("list kvfoldnodes: %w", err)
	}
	out := list.Items[:0]
	for _, n := range list.Items {
		if n.Spec.FoldName == fold.Name {
			out = append(out, n)
		}
	}
	return out, nil
}

// reconcileNodes creates a KVFoldNode for every node that runs an agent (the agent only
// patches its status: create cannot be limited by name in RBAC) and removes those of nodes
// that left: gone from the cluster, or no longer matched by the placement's nodeSelector,
// and without an agent Pod. A node between two Pods of a rolling update keeps its object.
func (r *KVFoldReconciler) reconcileNodes(ctx context.Context, fold *v1alpha1.KVFold) ([]v1alpha1.KVFoldNode, error) {
	log := logf.FromContext(ctx)
	running, err := r.agentNodes(ctx, fold)
	if err != nil {
		return nil, err
	}
	existing, err := r.listNodeObjects(ctx, fold)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	var keep []v1alpha1.KVFoldNode
	for _, n := range existing {
		have[n.Spec.NodeName] = true
		if running[n.Spec.NodeName] {
			keep = append(keep, n)
			continue
		}
		left, err := r.nodeLeft(ctx, fold, n.Spec.NodeName)
		if err != nil {
			return nil, err
		}
		if !left {
			keep = append(keep, n)
			continue
		}
		log.Info("removing the status object of a node that left", logKeyNode, n.Spec.NodeName)
		if err := r.Delete(ctx, &n); client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("delete kvfoldnode %s: %w", n.Name, err)
		}
	}
	for node := range running {
		if have[node] {
			continue
		}
		obj := &v1alpha1.KVFoldNode{
			ObjectMeta: metav1.ObjectMeta{
				Name: v1alpha1.KVFoldNodeName(fold.Name, node), Namespace: fold.Namespace,
				Labels: childLabels(fold, "node-status"),
			},
			Spec: v1alpha1.KVFoldNodeSpec{FoldName: fold.Name, NodeName: node},
		}
		if err := controllerutil.SetControllerReference(fold, obj, r.Scheme); err != nil {
			return nil, err
		}
		if err := r.Create(ctx, obj); err != nil {
			if !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("create kvfoldnode %s: %w", obj.Name, err)
			}
			if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return nil, fmt.Errorf("get kvfoldnode %s: %w", obj.Name, err)
			}
		}
		keep = append(keep, *obj)
	}
	return keep, nil
}

// nodeLeft reports whether a node without an agent Pod has left the fold for good.
func (r *KVFoldReconciler) nodeLeft(ctx context.Context, fold *v1alpha1.KVFold, name string) (bool, error) {
	node := nodeMeta()
	if err := r.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("get node %s: %w", name, err)
	}
	sel := labels.SelectorFromSet(fold.Spec.Placement.NodeSelector)
	return !sel.Matches(labels.Set(node.Labels)), nil
}

// nodeMeta is an empty Node as metadata only: the controller needs names and labels, and
// caching only metadata keeps node status churn out of its memory.
func nodeMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Node"))
	return m
}
