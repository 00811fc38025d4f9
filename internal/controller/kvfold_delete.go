package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// PurgeCommand is the manager subcommand the cleanup Jobs run.
const PurgeCommand = "purge-fold-data"

// reconcileDelete honours spec.dataRetention and then removes the finalizer.
//
// Retain: the finalizer goes at once; the children go with the KVFold (owner references).
// Delete: (1) delete the DaemonSet and wait until no agent Pod is left, so nothing writes
// the stores; (2) run one cleanup Job per node that may hold the fold (nodes with a
// KVFoldNode, and nodes the placement's nodeSelector matches), pinned to the node, which
// removes <hostPath>/<namespace>/<name>; (3) when every Job has succeeded, remove the
// finalizer. A failed Job sets Degraded/CleanupFailed and keeps the finalizer; to give up
// on the data, set spec.dataRetention to Retain. Nodes that no longer exist are skipped.
func (r *KVFoldReconciler) reconcileDelete(ctx context.Context, fold *v1alpha1.KVFold) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	if !controllerutil.ContainsFinalizer(fold, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	if fold.Spec.DataRetention == v1alpha1.DeleteData {
		done, err := r.cleanupNodes(ctx, fold)
		if err != nil {
			return ctrl.Result{}, err
		}
		if !done {
			return ctrl.Result{RequeueAfter: pollDeleting}, nil
		}
	}
	log.Info("removing finalizer", "dataRetention", fold.Spec.DataRetention)
	patch := client.MergeFromWithOptions(fold.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(fold, v1alpha1.Finalizer)
	if err := r.Patch(ctx, fold, patch); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, nil
}

// cleanupNodes drives the cleanup Jobs; done is true when every node's data is gone. It
// is re-entered on every change of the DaemonSet, agent Pods and Jobs (all watched).
func (r *KVFoldReconciler) cleanupNodes(ctx context.Context, fold *v1alpha1.KVFold) (done bool, err error) {
	ds := &appsv1.DaemonSet{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: fold.Namespace, Name: fold.Name}, ds); err == nil {
		if ds.DeletionTimestamp.IsZero() {
			if err := r.Delete(ctx, ds, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				return false, fmt.Errorf("delete daemonset: %w", err)
			}
		}
	} else if client.IgnoreNotFound(err) != nil {
		return false, fmt.Errorf("get daemonset: %w", err)
	}
	running, err := r.agentNodes(ctx, fold)
	if err != nil {
		return false, err
	}
	if len(running) > 0 {
		return false, r.setDeletingCondition(ctx, fold, metav1.ConditionFalse, v1alpha1.ReasonDeleting,
			fmt.Sprintf("waiting for the agents to stop on %d nodes before deleting their data", len(running)))
	}
	nodes, err := r.cleanupTargets(ctx, fold)
	if err != nil {
		return false, err
	}
	var failed, pending []string
	for _, node := range nodes {
		job := r.cleanupJob(fold, node)
		err := r.Get(ctx, client.ObjectKeyFromObject(job), job)
		if client.IgnoreNotFound(err) != nil {
			return false, fmt.Errorf("get cleanup job: %w", err)
		}
		if err != nil {
			if err := controllerutil.SetControllerReference(fold, job, r.Scheme); err != nil {
				return false, err
			}
			if err := r.Create(ctx, job); client.IgnoreAlreadyExists(err) != nil {
				return false, fmt.Errorf("create cleanup job for node %s: %w", node, err)
			}
			r.event(fold, corev1.EventTypeNormal, v1alpha1.EventCleanupStarted, "node %s: deleting %s", node, foldHostPath(fold))
			pending = append(pending, node)
			continue
		}
		switch {
		case jobSucceeded(job):
		case jobFailed(job):
			failed = append(failed, node)
		default:
			pending = append(pending, node)
		}
	}
	switch {
	case len(failed) > 0:
		msg := fmt.Sprintf("cleanup Jobs failed on nodes %s: %s stays there; see the Jobs' logs, or set spec.dataRetention to Retain to keep the data and finish the deletion", list(failed), foldHostPath(fold))
		was := meta.FindStatusCondition(fold.Status.Conditions, v1alpha1.ConditionDegraded)
		if was == nil || was.Reason != v1alpha1.ReasonCleanupFailed {
			r.event(fold, corev1.EventTypeWarning, v1alpha1.EventDegraded, "%s: %s", v1alpha1.ReasonCleanupFailed, msg)
		}
		return false, r.setDeletingCondition(ctx, fold, metav1.ConditionTrue, v1alpha1.ReasonCleanupFailed, msg)
	case len(pending) > 0:
		return false, r.setDeletingCondition(ctx, fold, metav1.ConditionFalse, v1alpha1.ReasonDeleting,
			fmt.Sprintf("deleting the fold data on nodes: %s", list(pending)))
	}
	r.event(fold, corev1.EventTypeNormal, v1alpha1.EventCleanupDone, "deleted %s on %d nodes", foldHostPath(fold), len(nodes))
	return true, nil
}

// setDeletingCondition reports the deletion's progress in the Degraded condition.
func (r *KVFoldReconciler) setDeletingCondition(ctx context.Context, fold *v1alpha1.KVFold, status metav1.ConditionStatus, reason, msg string) error {
	old := fold.DeepCopy()
	fold.Status.ObservedGeneration = fold.Generation // deletion bumps the generation
	meta.SetStatusCondition(&fold.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionDegraded, Status: status, Reason: reason, Message: msg, ObservedGeneration: fold.Generation,
	})
	if equality.Semantic.DeepEqual(old.Status, fold.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, fold, client.MergeFrom(old)); err != nil {
		return client.IgnoreNotFound(err)
	}
	return nil
}

// cleanupTargets are the existing nodes that may hold the fold's data, sorted.
func (r *KVFoldReconciler) cleanupTargets(ctx context.Context, fold *v1alpha1.KVFold) ([]string, error) {
	nodes := &metav1.PartialObjectMetadataList{}
	nodes.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	if err := r.List(ctx, nodes); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	exists := map[string]bool{}
	var out []string
	sel := labels.SelectorFromSet(fold.Spec.Placement.NodeSelector)
	for _, n := range nodes.Items {
		exists[n.Name] = true
		if sel.Matches(labels.Set(n.Labels)) {
			out = append(out, n.Name)
		}
	}
	objs, err := r.listNodeObjects(ctx, fold)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if exists[o.Spec.NodeName] {
			out = append(out, o.Spec.NodeName)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// cleanupJobName is <fold>-cleanup-<hash of node>: node names can be long.
func cleanupJobName(fold *v1alpha1.KVFold, node string) string {
	sum := sha256.Sum256([]byte(node))
	return fmt.Sprintf("%s-cleanup-%s", fold.Name, hex.EncodeToString(sum[:5]))
}

// cleanupJob removes <hostPath>/<namespace>/<name> on one node: it mounts the namespace
// directory and runs the manager's purge-fold-data on the fold's directory in it.
func (r *KVFoldReconciler) cleanupJob(fold *v1alpha1.KVFold, node string) *batchv1.Job {
	parent := path.Dir(foldHostPath(fold))
	lbls := childLabels(fold, componentCleanup)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: cleanupJobName(fold, node), Namespace: fold.Namespace, Labels: lbls,
			Annotations: map[string]string{"slipstream.dev/node": node}},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](3),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec: corev1.PodSpec{
					NodeName:      node,
					RestartPolicy: corev1.RestartPolicyOnFailure,
					// The data is there whatever the node's taints say now.
					Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					AutomountServiceAccountToken: ptr.To(false),
					Containers: []corev1.Container{{
						Name:            componentCleanup,
						Image:           r.CleanupImage,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Args:            []string{PurgeCommand, "--path=/fold-parent/" + fold.Name},
						VolumeMounts:    []corev1.VolumeMount{{Name: "fold-parent", MountPath: "/fold-parent"}},
						SecurityContext: defaultSecurityContext(),
					}},
					Volumes: []corev1.Volume{{Name: "fold-parent", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
						Path: parent, Type: ptr.To(corev1.HostPathDirectoryOrCreate),
					}}}},
				},
			},
		},
	}
}

func jobSucceeded(j *batchv1.Job) bool {
	return j.Status.Succeeded > 0 || jobCondition(j, batchv1.JobComplete)
}

func jobFailed(j *batchv1.Job) bool { return jobCondition(j, batchv1.JobFailed) }

func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// pollDeleting is how often a deletion waiting on Pods or Jobs looks again, besides the
// watches (a Job's Pod can sit Pending on a node that went NotReady).
const pollDeleting = 30 * time.Second
