package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// Log keys.
const (
	logKeyFold = "kvfold"
	logKeyStep = "step"
	logKeyNode = "node"
)

// hashAnnotation on every child object: a hash of what the controller last wanted it to be.
// A child is written only when that changes, so a steady-state pass makes no API writes.
const hashAnnotation = "slipstream.dev/desired-hash"

// KVFoldReconciler reconciles KVFold objects.
type KVFoldReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// AgentImage is used when spec.agent.image is empty.
	AgentImage string
	// AgentImagePullPolicy is the pull policy of AgentImage when spec.agent.imagePullPolicy
	// is empty (empty: Kubernetes' default).
	AgentImagePullPolicy corev1.PullPolicy
	// CleanupImage runs `purge-fold-data` in the cleanup Jobs of dataRetention: Delete (the
	// manager's own image: its entrypoint must be the manager binary).
	CleanupImage string
	// Now is the clock (tests may replace it); nil means time.Now.
	Now func() time.Time
}

func (r *KVFoldReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// RBAC of the manager. It must hold every permission it grants the agents' Roles (the API
// server refuses privilege escalation), hence get on secrets and patch on kvfoldnodes/status.
// +kubebuilder:rbac:groups=slipstream.dev,resources=kvfolds,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=slipstream.dev,resources=kvfolds/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=slipstream.dev,resources=kvfolds/finalizers,verbs=update
// +kubebuilder:rbac:groups=slipstream.dev,resources=kvfoldnodes,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=slipstream.dev,resources=kvfoldnodes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps,resources=daemonsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods;nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one KVFold's children and status to the spec.
func (r *KVFoldReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx).WithValues(logKeyFold, req.NamespacedName)
	ctx = logf.IntoContext(ctx, log)

	var fold v1alpha1.KVFold
	if err := r.Get(ctx, req.NamespacedName, &fold); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !fold.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, &fold)
	}
	if !controllerutil.ContainsFinalizer(&fold, v1alpha1.Finalizer) {
		patch := client.MergeFromWithOptions(fold.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(&fold, v1alpha1.Finalizer)
		if err := r.Patch(ctx, &fold, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
	}

	// eff carries the NATS Secrets of a NACK Account (spec.nats.accountRef) when there is one.
	eff, problems, err := r.effectiveFold(ctx, &fold)
	if err != nil {
		return ctrl.Result{}, err
	}
	more, err := r.validate(ctx, eff)
	if err != nil {
		return ctrl.Result{}, err
	}
	problems = append(problems, more...)
	steps := []struct {
		name string
		run  func(context.Context, *v1alpha1.KVFold) error
	}{
		{"serviceaccount", r.reconcileServiceAccount},
		{"lease", r.reconcileLease},
		{"service", r.reconcileService},
	}
	if len(problems) == 0 {
		// An invalid spec leaves the running agents as they are: a missing Secret would
		// only make new Pods hang in ContainerCreating.
		steps = append(steps, struct {
			name string
			run  func(context.Context, *v1alpha1.KVFold) error
		}{"daemonset", r.reconcileDaemonSet})
	}
	for _, s := range steps {
		if err := s.run(ctx, eff); err != nil {
			return ctrl.Result{}, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	nodes, err := r.reconcileNodes(ctx, &fold)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("kvfoldnodes: %w", err)
	}
	if err := r.reconcileRBAC(ctx, eff, nodes); err != nil {
		return ctrl.Result{}, fmt.Errorf("rbac: %w", err)
	}
	res, err := r.reconcileStatus(ctx, &fold, nodes, problems)
	if err == nil && fold.Spec.NATS.AccountRef != nil && (res.RequeueAfter == 0 || res.RequeueAfter > accountResync) {
		// The NACK Account is not watched (its kind may not even be installed): re-read it.
		res.RequeueAfter = accountResync
	}
	return res, err
}

// accountResync is how soon an edit of a fold's NACK Account reaches its agents.
const accountResync = time.Minute

// childLabels are on every object the controller makes for a fold.
func childLabels(fold *v1alpha1.KVFold, component string) map[string]string {
	return map[string]string{
		v1alpha1.LabelFold:           fold.Name,
		v1alpha1.LabelComponent:      component,
		v1alpha1.LabelManagedBy:      v1alpha1.ManagedByValue,
		"app.kubernetes.io/name":     "slipstream",
		"app.kubernetes.io/instance": fold.Name,
	}
}

// agentSelector selects a fold's agent Pods (it is the DaemonSet's immutable selector).
func agentSelector(fold *v1alpha1.KVFold) map[string]string {
	return map[string]string{v1alpha1.LabelFold: fold.Name, v1alpha1.LabelComponent: componentAgent}
}

const (
	componentAgent   = "agent"
	componentCleanup = "cleanup"
)

// Child object names.
func agentName(fold *v1alpha1.KVFold) string { return fold.Name + "-agent" }
func leaseName(fold *v1alpha1.KVFold) string { return v1alpha1.ExportLeaseName(fold.Name) }

// hashOf is a short stable hash of v's JSON.
func hashOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain API structs reach here; they always marshal.
		panic(fmt.Sprintf("hash: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:10])
}

// upToDate reports whether obj exists and carries hash; otherwise it records hash on obj.
func upToDate(obj client.Object, hash string) bool {
	created := obj.GetCreationTimestamp()
	if !created.IsZero() && obj.GetAnnotations()[hashAnnotation] == hash {
		return true
	}
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[hashAnnotation] = hash
	obj.SetAnnotations(a)
	return false
}

// CacheOptions restricts the manager's caches of the kinds it owns to objects with its
// managed-by label, so a big cluster's Pods, Services, Roles and node Leases are not all
// held in memory. (An object of the same name without the label is invisible to the
// controller: its create then fails with AlreadyExists, reported as a reconcile error.)
func CacheOptions() cache.Options {
	managed := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}:            managed,
		&batchv1.Job{}:           managed,
		&appsv1.DaemonSet{}:      managed,
		&corev1.Service{}:        managed,
		&corev1.ServiceAccount{}: managed,
		&rbacv1.Role{}:           managed,
		&rbacv1.RoleBinding{}:    managed,
		&coordinationv1.Lease{}:  managed,
	}}
}

// Index of KVFoldNodes by node, for the Node watch.
const nodeIndex = "spec.nodeName"

// Index of the Secrets a fold refers to, for the Secret watch.
const secretIndex = "spec.secretNames"

// SetupWithManager registers the reconciler and its watches.
func (r *KVFoldReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.KVFold{}, secretIndex, func(o client.Object) []string {
		return secretNames(o.(*v1alpha1.KVFold))
	}); err != nil {
		return fmt.Errorf("index secrets: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.KVFoldNode{}, nodeIndex, func(o client.Object) []string {
		return []string{o.(*v1alpha1.KVFoldNode).Spec.NodeName}
	}); err != nil {
		return fmt.Errorf("index kvfoldnodes: %w", err)
	}
	// A node that is deleted or relabelled may leave folds: reconcile the folds it has.
	byNode := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.KVFoldNodeList
		if err := mgr.GetClient().List(ctx, &list, client.MatchingFields{nodeIndex: o.GetName()}); err != nil {
			logf.FromContext(ctx).Error(err, "list KVFoldNodes of a Node")
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, n := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: n.Namespace, Name: n.Spec.FoldName}})
		}
		return reqs
	})
	byLabel := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		name := o.GetLabels()[v1alpha1.LabelFold]
		if name == "" || o.GetLabels()[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
	})
	bySecret := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var folds v1alpha1.KVFoldList
		if err := mgr.GetClient().List(ctx, &folds, client.InNamespace(o.GetNamespace()), client.MatchingFields{secretIndex: o.GetName()}); err != nil {
			logf.FromContext(ctx).Error(err, "list KVFolds for a Secret")
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(folds.Items))
		for _, f := range folds.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&f)})
		}
		return reqs
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.KVFold{}).
		Owns(&appsv1.DaemonSet{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&v1alpha1.KVFoldNode{}).
		Owns(&batchv1.Job{}).
		Watches(&corev1.Pod{}, byLabel).
		// Metadata only: the manager never holds Secret data in memory.
		Watches(&corev1.Secret{}, bySecret, builder.OnlyMetadata).
		Watches(&corev1.Node{}, byNode, builder.OnlyMetadata, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Named("kvfold").
		Complete(r)
}
