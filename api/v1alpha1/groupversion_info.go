package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The API package depends only on k8s.io/apimachinery and k8s.io/api, so agents and users
// import it without pulling in controller-runtime.
var (
	// GroupVersion is the group and version of this API: slipstream.dev/v1alpha1.
	GroupVersion = schema.GroupVersion{Group: "slipstream.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &KVFold{}, &KVFoldList{}, &KVFoldNode{}, &KVFoldNodeList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
