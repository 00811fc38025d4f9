package controller

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// FuzzValidateSpec: any KVFold a user can hand in (decoded from YAML, as kubectl would
// send it) is validated without a panic and without an error (the API answers), and every
// problem is one sentence naming its spec field. What CEL admission refuses is not
// filtered out first: the controller must cope with it too (CEL can be bypassed by an
// older CRD). Corpus: testdata/fuzz/FuzzValidateSpec.
func FuzzValidateSpec(f *testing.F) {
	f.Add([]byte(`{"metadata":{"name":"f","namespace":"edge"},"spec":{"nats":{"urls":["nats://n:4222"],"credentialsSecretRef":{"name":"nats-creds"}},"bucket":"b","backend":{"type":"pebble","pebble":{"cacheSize":"64Mi"}},"export":{"url":"s3://b","schedule":"*/15 * * * *","credentialsSecretRef":{"name":"missing"}}}}`))
	f.Add([]byte(`{"spec":{"export":{"schedule":"61 * * * *"},"backend":{"pebble":{"cacheSize":"1Ki"}},"nats":{"accountRef":{"name":"a"}}}}`))
	f.Add([]byte(`{"spec":{"export":{"schedule":"@every -1s"},"backend":{"pebble":{"cacheSize":"1E"}}}}`))
	f.Add([]byte(`{"spec":{"nats":{"tlsSecretRef":{"name":""},"tokenSecretRef":{"name":"x/y"}}}}`))
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		f.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		f.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "nats-creds", Namespace: "edge"}}
	r := &KVFoldReconciler{Client: fake.NewClientBuilder().WithScheme(scheme).WithObjects(secret).Build()}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fold v1alpha1.KVFold
		if yaml.Unmarshal(data, &fold) != nil {
			return
		}
		if fold.Namespace == "" {
			fold.Namespace = "edge"
		}
		for _, image := range []string{"", "registry.test/agent:1"} {
			r.AgentImage = image
			problems, err := r.validate(context.Background(), &fold)
			if err != nil {
				t.Fatalf("validate returned an error for a spec (problems are not errors): %v", err)
			}
			for _, p := range problems {
				if !strings.HasPrefix(p, "spec.") || strings.ContainsAny(p, "\n") {
					t.Fatalf("problem %q does not name its spec field in one line", p)
				}
			}
		}
	})
}
