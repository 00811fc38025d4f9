package controller

import (
	"context"
	"fmt"
	"slices"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// reconcileServiceAccount ensures the agents' ServiceAccount.
func (r *KVFoldReconciler) reconcileServiceAccount(ctx context.Context, fold *v1alpha1.KVFold) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: agentName(fold), Namespace: fold.Namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, sa, func() error {
		if upToDate(sa, hashOf(childLabels(fold, componentAgent))) {
			return nil
		}
		sa.Labels = childLabels(fold, componentAgent)
		return controllerutil.SetControllerReference(fold, sa, r.Scheme)
	})
	return err
}

// reconcileLease creates the fold's export Lease. The agents only get and update it (they
// elect the exporter with it); create cannot be limited to one name in RBAC, so the
// controller makes it and never touches it afterwards.
func (r *KVFoldReconciler) reconcileLease(ctx context.Context, fold *v1alpha1.KVFold) error {
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: leaseName(fold), Namespace: fold.Namespace, Labels: childLabels(fold, "export"),
	}}
	if err := r.Get(ctx, client.ObjectKeyFromObject(lease), lease); err == nil || !apierrors.IsNotFound(err) {
		return err
	}
	if err := controllerutil.SetControllerReference(fold, lease, r.Scheme); err != nil {
		return err
	}
	if err := r.Create(ctx, lease); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// agentRules is the least privilege an agent needs: read its own KVFold, read the Secrets
// its spec names, get and patch the status of its fold's KVFoldNodes, emit events, and use
// its export Lease. Every rule that can be limited by name is; a rule whose name list
// would be empty is left out (an empty list would mean every name).
func agentRules(fold *v1alpha1.KVFold, nodeObjects []string) []rbacv1.PolicyRule {
	rules := []rbacv1.PolicyRule{{
		APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"kvfolds"},
		ResourceNames: []string{fold.Name}, Verbs: []string{"get", "list", "watch"},
	}}
	if len(nodeObjects) > 0 {
		rules = append(rules, rbacv1.PolicyRule{
			APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"kvfoldnodes"},
			ResourceNames: nodeObjects, Verbs: []string{"get"},
		}, rbacv1.PolicyRule{
			APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"kvfoldnodes/status"},
			ResourceNames: nodeObjects, Verbs: []string{"get", "patch"},
		})
	}
	if secrets := secretNames(fold); len(secrets) > 0 {
		rules = append(rules, rbacv1.PolicyRule{
			APIGroups: []string{""}, Resources: []string{"secrets"},
			ResourceNames: secrets, Verbs: []string{"get"},
		})
	}
	return append(rules, rbacv1.PolicyRule{
		APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"},
		Verbs: []string{"create", "patch"},
	}, rbacv1.PolicyRule{
		APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
		ResourceNames: []string{leaseName(fold)}, Verbs: []string{"get", "update", "patch"},
	})
}

// reconcileRBAC ensures the agents' Role and RoleBinding; nodeObjects are the names of the
// fold's KVFoldNodes.
func (r *KVFoldReconciler) reconcileRBAC(ctx context.Context, fold *v1alpha1.KVFold, nodes []v1alpha1.KVFoldNode) error {
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	rules := agentRules(fold, names)
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: agentName(fold), Namespace: fold.Namespace}}
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, role, func() error {
		if upToDate(role, hashOf(rules)) {
			return nil
		}
		role.Labels = childLabels(fold, componentAgent)
		role.Rules = rules
		return controllerutil.SetControllerReference(fold, role, r.Scheme)
	}); err != nil {
		return err
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: agentName(fold), Namespace: fold.Namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, binding, func() error {
		if upToDate(binding, hashOf(agentName(fold))) {
			return nil
		}
		binding.Labels = childLabels(fold, componentAgent)
		binding.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: agentName(fold)}
		binding.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: agentName(fold), Namespace: fold.Namespace}}
		return controllerutil.SetControllerReference(fold, binding, r.Scheme)
	})
	return err
}

// secretRef is one Secret a fold refers to, with the spec field that names it.
type secretRef struct {
	field, name string
}

func secretRefs(fold *v1alpha1.KVFold) []secretRef {
	var refs []secretRef
	n := fold.Spec.NATS
	// Secrets from a NACK Account (see effectiveFold) are named after the Account.
	natsField := func(f string) string {
		if n.AccountRef != nil {
			return fmt.Sprintf("spec.nats.accountRef (NACK Account %q, as %s)", n.AccountRef.Name, f)
		}
		return "spec.nats." + f
	}
	if n.CredentialsSecretRef != nil {
		refs = append(refs, secretRef{natsField("credentialsSecretRef"), n.CredentialsSecretRef.Name})
	}
	if n.NKeySecretRef != nil {
		refs = append(refs, secretRef{natsField("nkeySecretRef"), n.NKeySecretRef.Name})
	}
	if n.UserPasswordSecretRef != nil {
		refs = append(refs, secretRef{natsField("userPasswordSecretRef"), n.UserPasswordSecretRef.Name})
	}
	if n.TokenSecretRef != nil {
		refs = append(refs, secretRef{natsField("tokenSecretRef"), n.TokenSecretRef.Name})
	}
	if n.TLSSecretRef != nil {
		refs = append(refs, secretRef{natsField("tlsSecretRef"), n.TLSSecretRef.Name})
	}
	if e := fold.Spec.Export; e != nil && e.CredentialsSecretRef != nil {
		refs = append(refs, secretRef{"spec.export.credentialsSecretRef", e.CredentialsSecretRef.Name})
	}
	return refs
}

// secretNames are the distinct names of the Secrets a fold refers to, sorted.
func secretNames(fold *v1alpha1.KVFold) []string {
	var names []string
	for _, s := range secretRefs(fold) {
		names = append(names, s.name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
