// Package chart holds the Helm chart's tests (in its _test files): `helm lint` of
// charts/slipstream, and `helm template` compared object by object with what
// `kubectl kustomize` makes of config/ for the same settings, plus the checks that the chart's
// CRDs and ClusterRole rules are the ones controller-gen generated. They run real helm and
// kubectl binaries, named by the HELM and KUBECTL environment variables (`make test-chart`
// builds and sets both).
//
// The mapping between the two renderings, which the comparison applies before it compares:
//   - the chart is rendered as release "slipstream" in namespace slipstream-system, which
//     gives the object names and namespace config/default gives (namePrefix slipstream-);
//   - the labels only a Helm release carries (helm.sh/chart, app.kubernetes.io/managed-by,
//     app.kubernetes.io/instance, app.kubernetes.io/version) are removed from every label
//     map and selector of the chart's objects;
//   - config/default's Namespace object is left out: Helm installs into a namespace that
//     exists or that `helm install --create-namespace` creates.
//
// Everything else (CRDs, RBAC rules, the Deployment's args, ports, probes, security
// contexts, resources, the metrics Service) must be equal.
package chart
