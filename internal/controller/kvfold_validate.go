package controller

import (
	"context"
	"fmt"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// Bounds of spec.backend.pebble.cacheSize.
var (
	minCacheSize = resource.MustParse("1Mi")
	maxCacheSize = resource.MustParse("64Gi")
)

// validate checks what admission (CEL) cannot: cron syntax, quantities, the default image,
// and that the referenced Secrets exist. Each problem is one precise sentence naming the
// field; the list is empty when the spec is valid. Errors are API failures, not problems.
func (r *KVFoldReconciler) validate(ctx context.Context, fold *v1alpha1.KVFold) ([]string, error) {
	var problems []string
	if e := fold.Spec.Export; e != nil {
		if _, err := cron.ParseStandard(e.Schedule); err != nil {
			problems = append(problems, fmt.Sprintf("spec.export.schedule %q is not a cron schedule: %v", e.Schedule, err))
		}
	}
	if p := fold.Spec.Backend.Pebble; p != nil && p.CacheSize != nil {
		if p.CacheSize.Cmp(minCacheSize) < 0 || p.CacheSize.Cmp(maxCacheSize) > 0 {
			problems = append(problems, fmt.Sprintf("spec.backend.pebble.cacheSize %s is out of range (1Mi..64Gi)", p.CacheSize.String()))
		}
	}
	if fold.Spec.Agent.Image == "" && r.AgentImage == "" {
		problems = append(problems, "spec.agent.image is empty and the manager has no default agent image (--agent-image)")
	}
	for _, ref := range secretRefs(fold) {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		err := r.Get(ctx, client.ObjectKey{Namespace: fold.Namespace, Name: ref.name}, meta)
		switch {
		case apierrors.IsNotFound(err):
			problems = append(problems, fmt.Sprintf("%s: Secret %q not found in namespace %q", ref.field, ref.name, fold.Namespace))
		case err != nil:
			return nil, fmt.Errorf("get secret %s: %w", ref.name, err)
		}
	}
	return problems, nil
}
