package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// NACK interop: spec.nats.accountRef names an Account of NACK, the NATS JetStream controller
// (jetstream.nats.io/v1beta2). Its Secrets become the fold's NATS credentials and TLS, so a
// team that already manages its NATS accounts with NACK does not repeat them per KVFold.

// nackAccountGVK is the NACK Account kind. It is read as unstructured: Slipstream does not
// depend on NACK's Go module, and the kind may not be installed at all.
var nackAccountGVK = schema.GroupVersionKind{Group: "jetstream.nats.io", Version: "v1beta2", Kind: "Account"}

// +kubebuilder:rbac:groups=jetstream.nats.io,resources=accounts,verbs=get;list;watch

// nackAccountSpec is the part of a NACK Account's spec the agents use. In every block the
// string fields name keys of the block's Secret (NACK mounts the Secret and reads those
// files), not the secret material itself.
type nackAccountSpec struct {
	Servers []string `json:"servers,omitempty"`
	TLS     *struct {
		Cert   string          `json:"cert,omitempty"`
		Key    string          `json:"key,omitempty"`
		CA     string          `json:"ca,omitempty"`
		Secret *nackSecretName `json:"secret,omitempty"`
	} `json:"tls,omitempty"`
	Creds *struct {
		File   string          `json:"file,omitempty"`
		Secret *nackSecretName `json:"secret,omitempty"`
	} `json:"creds,omitempty"`
	Token *struct {
		Token  string          `json:"token,omitempty"`
		Secret *nackSecretName `json:"secret,omitempty"`
	} `json:"token,omitempty"`
	User *struct {
		User     string          `json:"user,omitempty"`
		Password string          `json:"password,omitempty"`
		Secret   *nackSecretName `json:"secret,omitempty"`
	} `json:"user,omitempty"`
}

type nackSecretName struct {
	Name string `json:"name"`
}

func (s *nackSecretName) name() string {
	if s == nil {
		return ""
	}
	return s.Name
}

// effectiveFold is the fold the children are built from: fold itself, or, with
// spec.nats.accountRef, a copy whose NATS Secret references come from the NACK Account.
// problems are precise sentences for the InvalidSpec condition (the Account or its kind
// missing, a block without a Secret, more than one credential kind); err is an API failure.
func (r *KVFoldReconciler) effectiveFold(ctx context.Context, fold *v1alpha1.KVFold) (*v1alpha1.KVFold, []string, error) {
	ref := fold.Spec.NATS.AccountRef
	if ref == nil {
		return fold, nil, nil
	}
	field := fmt.Sprintf("spec.nats.accountRef: NACK Account %q", ref.Name)
	acct := &unstructured.Unstructured{}
	acct.SetGroupVersionKind(nackAccountGVK)
	err := r.Get(ctx, client.ObjectKey{Namespace: fold.Namespace, Name: ref.Name}, acct)
	switch {
	case meta.IsNoMatchError(err) || isNoKindError(err):
		return fold, []string{field + ": the NACK Account kind (accounts.jetstream.nats.io/v1beta2) is not installed in this cluster"}, nil
	case apierrors.IsNotFound(err):
		return fold, []string{fmt.Sprintf("%s not found in namespace %q", field, fold.Namespace)}, nil
	case err != nil:
		return nil, nil, fmt.Errorf("get NACK Account %s: %w", ref.Name, err)
	}
	var spec nackAccountSpec
	raw, _, _ := unstructured.NestedMap(acct.Object, "spec")
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &spec); err != nil {
		return fold, []string{fmt.Sprintf("%s: spec does not parse: %v", field, err)}, nil
	}
	nats, problems := natsFromAccount(field, &spec)
	if len(problems) > 0 {
		return fold, problems, nil
	}
	eff := fold.DeepCopy()
	nats.URLs = fold.Spec.NATS.URLs
	nats.AccountRef = ref
	eff.Spec.NATS = nats
	return eff, nil, nil
}

// natsFromAccount maps a NACK Account onto the KVFold's own Secret references.
func natsFromAccount(field string, a *nackAccountSpec) (v1alpha1.NATSSpec, []string) {
	var n v1alpha1.NATSSpec
	var problems []string
	kinds := 0
	missingSecret := func(block string) {
		problems = append(problems, fmt.Sprintf("%s: spec.%s has no secret.name", field, block))
	}
	if c := a.Creds; c != nil {
		kinds++
		if c.Secret.name() == "" {
			missingSecret("creds")
		} else {
			n.CredentialsSecretRef = &v1alpha1.SecretKeyReference{Name: c.Secret.Name, Key: c.File}
		}
	}
	if t := a.Token; t != nil {
		kinds++
		if t.Secret.name() == "" {
			missingSecret("token")
		} else {
			n.TokenSecretRef = &v1alpha1.SecretKeyReference{Name: t.Secret.Name, Key: t.Token}
		}
	}
	if u := a.User; u != nil {
		kinds++
		if u.Secret.name() == "" {
			missingSecret("user")
		} else {
			n.UserPasswordSecretRef = &v1alpha1.UserPasswordSecretReference{Name: u.Secret.Name, UsernameKey: u.User, PasswordKey: u.Password}
		}
	}
	if kinds > 1 {
		problems = append(problems, field+": sets more than one of spec.creds, spec.token and spec.user; the agents use exactly one")
	}
	if t := a.TLS; t != nil {
		if t.Secret.name() == "" {
			missingSecret("tls")
		} else {
			n.TLSSecretRef = &v1alpha1.TLSSecretReference{Name: t.Secret.Name, CAKey: t.CA, CertKey: t.Cert, PrivateKeyKey: t.Key}
		}
	}
	problems = append(problems, invalidKeys(field, keyOf(n.CredentialsSecretRef), keyOf(n.TokenSecretRef))...)
	if u := n.UserPasswordSecretRef; u != nil {
		problems = append(problems, invalidKeys(field, u.UsernameKey, u.PasswordKey)...)
	}
	if t := n.TLSSecretRef; t != nil {
		problems = append(problems, invalidKeys(field, t.CAKey, t.CertKey, t.PrivateKeyKey)...)
	}
	return n, problems
}

func keyOf(r *v1alpha1.SecretKeyReference) string {
	if r == nil {
		return ""
	}
	return r.Key
}

func invalidKeys(field string, keys ...string) []string {
	var problems []string
	for _, k := range keys {
		if k != "" && !validSecretKey(k) {
			problems = append(problems, fmt.Sprintf("%s: %q is not a valid Secret key", field, k))
		}
	}
	return problems
}

// validSecretKey is the API server's rule for Secret data keys ([-._a-zA-Z0-9]+, at most
// 253 characters, not "." or ".."): the key becomes a file name in the agent's mount.
func validSecretKey(k string) bool {
	if k == "" || len(k) > 253 || k == "." || k == ".." {
		return false
	}
	for _, c := range k {
		if !(c == '-' || c == '.' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// isNoKindError: a client whose RESTMapper is not lazy reports an unknown kind through
// runtime.IsNotRegisteredError rather than a NoMatch error.
func isNoKindError(err error) bool {
	return err != nil && runtime.IsNotRegisteredError(err)
}
