package chart_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	chartPath = "charts/slipstream"
	// The release name and namespace under which the chart renders config/default's names.
	release   = "slipstream"
	namespace = "slipstream-system"
	// The Kubernetes version helm lints and renders for (the project's cluster version).
	kubeVersion = "v1.37.2"
)

// helmOnlyLabels are the labels a Helm release adds that config/ (kustomize) has no
// counterpart for; the comparison removes them from the chart's objects (doc.go).
var helmOnlyLabels = []string{
	"helm.sh/chart",
	"app.kubernetes.io/managed-by",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/version",
}

type object = map[string]any

// repoRoot is the repository's top directory (tests run in test/chart).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatalf("repository root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, chartPath, "Chart.yaml")); err != nil {
		t.Fatalf("repository root %s has no %s/Chart.yaml: %v", root, chartPath, err)
	}
	return root
}

// tool returns the binary named by the environment variable env, failing the test with how
// to get it when it is unset or missing.
func tool(t *testing.T, env, name, build string) string {
	t.Helper()
	p := os.Getenv(env)
	hint := fmt.Sprintf("run `make test-chart` (it builds %s with %#q and sets %s), or export %s=/path/to/%s", name, build, env, env, name)
	if p == "" {
		t.Fatalf("%s is not set: the chart tests run a real %s binary; %s", env, name, hint)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("%s=%s: %v; %s", env, p, err, hint)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("%s=%s is not an executable file; %s", env, p, hint)
	}
	return p
}

func helmBin(t *testing.T) string {
	return tool(t, "HELM", "helm", "bash hack/tool.sh helm")
}

func kubectlBin(t *testing.T) string {
	return tool(t, "KUBECTL", "kubectl", "bash hack/k8s-assets.sh kubectl")
}

// command runs bin with args in the repository root and returns its stdout; the error
// carries the command line and its stderr.
func command(t *testing.T, bin string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = repoRoot(t)
	// Keep helm away from the user's helm configuration, repositories and cache.
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.Bytes(), nil
}

// helmTemplate renders the chart (CRDs included) as release rel in namespace ns.
func helmTemplate(t *testing.T, rel, ns string, args ...string) ([]object, error) {
	t.Helper()
	all := append([]string{"template", rel, chartPath, "--namespace", ns, "--include-crds", "--kube-version", kubeVersion}, args...)
	out, err := command(t, helmBin(t), all...)
	if err != nil {
		return nil, err
	}
	return parseObjects(out)
}

func mustHelmTemplate(t *testing.T, rel, ns string, args ...string) []object {
	t.Helper()
	objs, err := helmTemplate(t, rel, ns, args...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// kustomize renders a kustomization directory (relative to the repository root).
func kustomize(t *testing.T, dir string) []object {
	t.Helper()
	out, err := command(t, kubectlBin(t), "kustomize", dir)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := parseObjects(out)
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	return objs
}

// parseObjects splits a multi-document YAML stream into objects, skipping empty documents.
func parseObjects(data []byte) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read YAML document %d: %w", i, err)
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return nil, fmt.Errorf("parse YAML document %d: %w\n%s", i, err, doc)
		}
		if len(o) == 0 {
			continue
		}
		if str(o, "kind") == "" || str(o, "metadata", "name") == "" {
			return nil, fmt.Errorf("YAML document %d has no kind or metadata.name:\n%s", i, doc)
		}
		objs = append(objs, o)
	}
}

// get walks nested maps along path; nil when a step is missing.
func get(o any, path ...string) any {
	for _, p := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[p]
	}
	return o
}

func str(o any, path ...string) string {
	s, _ := get(o, path...).(string)
	return s
}

// key identifies an object: API group, kind, namespace and name.
func key(o object) string {
	group, _, _ := strings.Cut(str(o, "apiVersion"), "/")
	if !strings.Contains(str(o, "apiVersion"), "/") {
		group = "core"
	}
	return fmt.Sprintf("%s.%s %s/%s", str(o, "kind"), group, str(o, "metadata", "namespace"), str(o, "metadata", "name"))
}

func index(t *testing.T, what string, objs []object) map[string]object {
	t.Helper()
	m := make(map[string]object, len(objs))
	for _, o := range objs {
		k := key(o)
		if _, dup := m[k]; dup {
			t.Fatalf("%s renders %s twice", what, k)
		}
		m[k] = o
	}
	return m
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if str(o, "kind") == kind && str(o, "metadata", "name") == name {
			return o
		}
	}
	var have []string
	for _, o := range objs {
		have = append(have, key(o))
	}
	t.Fatalf("no %s %q among the rendered objects: %s", kind, name, strings.Join(have, ", "))
	return nil
}

func kinds(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if str(o, "kind") == kind {
			out = append(out, o)
		}
	}
	return out
}

// stripHelmLabels removes helmOnlyLabels from every label map and label selector in v.
func stripHelmLabels(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if m, ok := child.(map[string]any); ok && (k == "labels" || k == "matchLabels" || k == "selector") {
				for _, l := range helmOnlyLabels {
					delete(m, l)
				}
			}
			stripHelmLabels(child)
		}
	case []any:
		for _, child := range v {
			stripHelmLabels(child)
		}
	}
}

// diff lists the differences between two decoded YAML values, one line per path.
func diff(path string, chart, config any) []string {
	switch c := chart.(type) {
	case map[string]any:
		k, ok := config.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: chart has %s, config has %s", path, show(chart), show(config))}
		}
		keys := make([]string, 0, len(c)+len(k))
		for name := range c {
			keys = append(keys, name)
		}
		for name := range k {
			if _, ok := c[name]; !ok {
				keys = append(keys, name)
			}
		}
		sort.Strings(keys)
		var out []string
		for _, name := range keys {
			cv, inChart := c[name]
			kv, inConfig := k[name]
			switch {
			case !inConfig:
				out = append(out, fmt.Sprintf("%s.%s: only in the chart: %s", path, name, show(cv)))
			case !inChart:
				out = append(out, fmt.Sprintf("%s.%s: only in config: %s", path, name, show(kv)))
			default:
				out = append(out, diff(path+"."+name, cv, kv)...)
			}
		}
		return out
	case []any:
		k, ok := config.([]any)
		if !ok || len(c) != len(k) {
			return []string{fmt.Sprintf("%s: chart has %s, config has %s", path, show(chart), show(config))}
		}
		var out []string
		for i := range c {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), c[i], k[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(chart, config) {
			return []string{fmt.Sprintf("%s: chart has %s, config has %s", path, show(chart), show(config))}
		}
		return nil
	}
}

func show(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	s := strings.TrimSpace(string(b))
	if strings.Contains(s, "\n") {
		return "\n      " + strings.ReplaceAll(s, "\n", "\n      ")
	}
	return s
}

func TestHelmLint(t *testing.T) {
	for _, values := range []string{"", "test/chart/testdata/default-values.yaml", "test/chart/testdata/hostnetwork/values.yaml"} {
		args := []string{"lint", "--strict", "--kube-version", kubeVersion, chartPath}
		if values != "" {
			args = append(args, "--values", values)
		}
		if _, err := command(t, helmBin(t), args...); err != nil {
			t.Errorf("helm lint is not clean: %v", err)
		}
	}
}

// TestChartMatchesConfig renders the chart and config/ (kustomize) for the same settings and
// compares them object by object, after the mapping doc.go describes.
func TestChartMatchesConfig(t *testing.T) {
	cases := []struct {
		name, values, kustomization string
	}{
		// config/default as it is, against the chart's defaults (image tags aside).
		{"default", "test/chart/testdata/default-values.yaml", "config/default"},
		// The test cluster's profile: host network, API server on 127.0.0.1:6443, local images.
		{"hostnetwork", "test/chart/testdata/hostnetwork/values.yaml", "test/chart/testdata/hostnetwork"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chart := mustHelmTemplate(t, release, namespace, "--values", tc.values)
			for _, o := range chart {
				stripHelmLabels(o)
			}
			var config []object
			for _, o := range kustomize(t, tc.kustomization) {
				if str(o, "kind") != "Namespace" {
					config = append(config, o)
				}
			}
			fromChart, fromConfig := index(t, "the chart", chart), index(t, tc.kustomization, config)
			for k := range fromConfig {
				if _, ok := fromChart[k]; !ok {
					t.Errorf("%s renders %s; the chart does not", tc.kustomization, k)
				}
			}
			keys := make([]string, 0, len(fromChart))
			for k := range fromChart {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				c, ok := fromConfig[k]
				if !ok {
					t.Errorf("the chart renders %s; %s does not", k, tc.kustomization)
					continue
				}
				if d := diff("", fromChart[k], c); len(d) > 0 {
					t.Errorf("%s differs between the chart (values %s) and %s:\n  %s", k, tc.values, tc.kustomization, strings.Join(d, "\n  "))
				}
			}
			if len(fromChart) < 9 {
				t.Errorf("the chart renders only %d objects (%v): expected the CRDs, RBAC, ServiceAccount, Deployment and Service", len(fromChart), keys)
			}
		})
	}
}

// TestChartCRDsAreGenerated: charts/slipstream/crds holds exactly config/crd/bases, byte for
// byte (`make chart-sync` copies them; `make manifests` runs it).
func TestChartCRDsAreGenerated(t *testing.T) {
	root := repoRoot(t)
	read := func(dir string) map[string][]byte {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no CRDs in %s (%v)", dir, err)
		}
		m := map[string][]byte{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m[filepath.Base(f)] = b
		}
		return m
	}
	generated, chart := read("config/crd/bases"), read(chartPath+"/crds")
	for name, b := range generated {
		c, ok := chart[name]
		switch {
		case !ok:
			t.Errorf("%s/crds lacks %s: run `make chart-sync`", chartPath, name)
		case !bytes.Equal(b, c):
			t.Errorf("%s/crds/%s differs from config/crd/bases/%s: run `make chart-sync` (never edit either by hand)", chartPath, name, name)
		}
	}
	for name := range chart {
		if _, ok := generated[name]; !ok {
			t.Errorf("%s/crds/%s has no counterpart in config/crd/bases: run `make chart-sync`", chartPath, name)
		}
	}
}

// TestChartClusterRoleIsGenerated: the chart's ClusterRole has exactly the rules controller-gen
// generated into config/rbac/role.yaml.
func TestChartClusterRoleIsGenerated(t *testing.T) {
	root := repoRoot(t)
	generated, err := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile(filepath.Join(root, chartPath, "files", "manager-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(generated, copied) {
		t.Errorf("%s/files/manager-role.yaml differs from config/rbac/role.yaml: run `make chart-sync`", chartPath)
	}
	role, err := parseObjects(generated)
	if err != nil || len(role) != 1 {
		t.Fatalf("config/rbac/role.yaml: want one ClusterRole, got %d objects (%v)", len(role), err)
	}
	want := get(role[0], "rules")
	if rules, _ := want.([]any); len(rules) == 0 {
		t.Fatalf("config/rbac/role.yaml has no rules")
	}
	for _, rel := range []string{release, "edge"} {
		objs := mustHelmTemplate(t, rel, namespace)
		cr := kinds(objs, "ClusterRole")
		if len(cr) != 1 {
			t.Fatalf("release %s: want one ClusterRole, got %d", rel, len(cr))
		}
		if d := diff("rules", get(cr[0], "rules"), want); len(d) > 0 {
			t.Errorf("release %s: the chart's ClusterRole rules differ from config/rbac/role.yaml:\n  %s", rel, strings.Join(d, "\n  "))
		}
	}
}

func deploymentOf(t *testing.T, objs []object) object {
	t.Helper()
	d := kinds(objs, "Deployment")
	if len(d) != 1 {
		t.Fatalf("want one Deployment, got %d", len(d))
	}
	return d[0]
}

func managerContainer(t *testing.T, objs []object) object {
	t.Helper()
	cs, _ := get(deploymentOf(t, objs), "spec", "template", "spec", "containers").([]any)
	if len(cs) != 1 {
		t.Fatalf("want one container in the manager Pod, got %d", len(cs))
	}
	c, _ := cs[0].(object)
	return c
}

func args(t *testing.T, objs []object) []string {
	t.Helper()
	raw, _ := get(managerContainer(t, objs), "args").([]any)
	out := make([]string, 0, len(raw))
	for _, a := range raw {
		s, ok := a.(string)
		if !ok {
			t.Fatalf("manager arg %v is not a string", a)
		}
		out = append(out, s)
	}
	return out
}

func appVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), chartPath, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil || c.AppVersion == "" {
		t.Fatalf("Chart.yaml: no appVersion (%v)", err)
	}
	return c.AppVersion
}

// TestChartDefaults: with no values, both images take the chart's appVersion, the cleanup Jobs
// use the manager image, and the manager runs non-root on a read-only root filesystem.
func TestChartDefaults(t *testing.T) {
	objs := mustHelmTemplate(t, release, namespace)
	v := appVersion(t)
	c := managerContainer(t, objs)
	manager := "ghcr.io/slipstream-dev/slipstream-manager:" + v
	if got := str(c, "image"); got != manager {
		t.Errorf("manager image %q, want %q", got, manager)
	}
	a := args(t, objs)
	for _, want := range []string{
		"--leader-elect",
		"--zap-log-level=info",
		"--agent-image=ghcr.io/slipstream-dev/slipstream-agent:" + v,
		"--cleanup-image=" + manager,
	} {
		if !slices.Contains(a, want) {
			t.Errorf("manager args %q lack %q", a, want)
		}
	}
	if got := get(c, "securityContext", "readOnlyRootFilesystem"); got != true {
		t.Errorf("readOnlyRootFilesystem = %v, want true", got)
	}
	if got := get(deploymentOf(t, objs), "spec", "template", "spec", "securityContext", "runAsNonRoot"); got != true {
		t.Errorf("runAsNonRoot = %v, want true", got)
	}
	if sm := kinds(objs, "ServiceMonitor"); len(sm) != 0 {
		t.Errorf("a ServiceMonitor is rendered by default; serviceMonitor.enabled defaults to false")
	}
	if hn := get(deploymentOf(t, objs), "spec", "template", "spec", "hostNetwork"); hn != nil {
		t.Errorf("hostNetwork = %v by default, want it unset", hn)
	}
}

// TestChartServiceMonitor: the optional ServiceMonitor selects the metrics Service by its labels,
// in the release namespace, on its metrics port.
func TestChartServiceMonitor(t *testing.T) {
	objs := mustHelmTemplate(t, release, namespace,
		"--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=kps",
		"--set", "serviceMonitor.interval=30s")
	sm := find(t, objs, "ServiceMonitor", "slipstream-controller-manager")
	svc := find(t, objs, "Service", "slipstream-controller-manager-metrics-service")
	if str(sm, "metadata", "namespace") != namespace {
		t.Errorf("ServiceMonitor namespace %q, want %q", str(sm, "metadata", "namespace"), namespace)
	}
	if str(sm, "metadata", "labels", "release") != "kps" {
		t.Errorf("ServiceMonitor labels %v lack serviceMonitor.labels (release: kps)", get(sm, "metadata", "labels"))
	}
	match, _ := get(sm, "spec", "selector", "matchLabels").(map[string]any)
	svcLabels, _ := get(svc, "metadata", "labels").(map[string]any)
	if len(match) == 0 {
		t.Fatalf("ServiceMonitor has no selector.matchLabels")
	}
	for k, v := range match {
		if svcLabels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v; the metrics Service's labels are %v", k, v, svcLabels)
		}
	}
	if ns, _ := get(sm, "spec", "namespaceSelector", "matchNames").([]any); len(ns) != 1 || ns[0] != namespace {
		t.Errorf("ServiceMonitor namespaceSelector.matchNames %v, want [%s]", ns, namespace)
	}
	eps, _ := get(sm, "spec", "endpoints").([]any)
	if len(eps) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v, want one", eps)
	}
	ports, _ := get(svc, "spec", "ports").([]any)
	if len(ports) != 1 || str(ports[0], "name") != str(eps[0], "port") {
		t.Errorf("ServiceMonitor scrapes port %q; the metrics Service's ports are %v", str(eps[0], "port"), ports)
	}
	if str(eps[0], "path") != "/metrics" || str(eps[0], "interval") != "30s" {
		t.Errorf("ServiceMonitor endpoint %v, want path /metrics and interval 30s", eps[0])
	}
}

// TestChartNamesAndBindings: another release name and namespace, an existing ServiceAccount,
// and leader election off: every name, namespace and binding follows.
func TestChartNamesAndBindings(t *testing.T) {
	const rel, ns = "edge", "ops"
	objs := mustHelmTemplate(t, rel, ns, "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=existing",
		"--set", "leaderElection.enabled=false")
	if sa := kinds(objs, "ServiceAccount"); len(sa) != 0 {
		t.Errorf("serviceAccount.create=false still renders a ServiceAccount")
	}
	if r := append(kinds(objs, "Role"), kinds(objs, "RoleBinding")...); len(r) != 0 {
		t.Errorf("leaderElection.enabled=false still renders the leader election Role/RoleBinding")
	}
	if slices.Contains(args(t, objs), "--leader-elect") {
		t.Errorf("leaderElection.enabled=false still passes --leader-elect")
	}
	for _, o := range objs {
		name := str(o, "metadata", "name")
		if str(o, "kind") != "CustomResourceDefinition" && !strings.HasPrefix(name, "edge-slipstream-") {
			t.Errorf("%s: name lacks the release prefix edge-slipstream-", key(o))
		}
		if got := str(o, "metadata", "namespace"); got != "" && got != ns {
			t.Errorf("%s: namespace %q, want %q", key(o), got, ns)
		}
	}
	d := deploymentOf(t, objs)
	if got := str(d, "spec", "template", "spec", "serviceAccountName"); got != "existing" {
		t.Errorf("Deployment serviceAccountName %q, want existing", got)
	}
	crb := find(t, objs, "ClusterRoleBinding", "edge-slipstream-manager-rolebinding")
	subjects, _ := get(crb, "subjects").([]any)
	if len(subjects) != 1 || str(subjects[0], "name") != "existing" || str(subjects[0], "namespace") != ns {
		t.Errorf("ClusterRoleBinding subjects %v, want ServiceAccount %s/existing", subjects, ns)
	}
	if got := str(crb, "roleRef", "name"); got != "edge-slipstream-manager-role" {
		t.Errorf("ClusterRoleBinding roleRef %q, want edge-slipstream-manager-role", got)
	}
	// The selector of the Deployment matches its Pods, and the Service selects them too.
	sel, _ := get(d, "spec", "selector", "matchLabels").(map[string]any)
	podLabels, _ := get(d, "spec", "template", "metadata", "labels").(map[string]any)
	svcSel, _ := get(find(t, objs, "Service", "edge-slipstream-controller-manager-metrics-service"), "spec", "selector").(map[string]any)
	for _, s := range []map[string]any{sel, svcSel} {
		if len(s) == 0 {
			t.Fatalf("empty selector")
		}
		for k, v := range s {
			if podLabels[k] != v {
				t.Errorf("selector %s=%v does not match the manager Pod labels %v", k, v, podLabels)
			}
		}
	}
	if sel["app.kubernetes.io/instance"] != rel {
		t.Errorf("Deployment selector %v lacks app.kubernetes.io/instance=%s (two releases would share Pods)", sel, rel)
	}
}

// TestChartRejectsBadValues: values the chart cannot honour fail `helm template` with a message
// that names them.
func TestChartRejectsBadValues(t *testing.T) {
	cases := []struct {
		set  []string
		want string
	}{
		{[]string{"agent.image.pullPolicy=Sometimes"}, "/agent/image/pullPolicy"},
		{[]string{"image.pullPolicy=Sometimes"}, "/image/pullPolicy"},
		{[]string{"logLevel=verbose"}, "/logLevel"},
		{[]string{"image.repository="}, "/image/repository"},
		{[]string{"metrics.port=70000"}, "/metrics/port"},
		{[]string{"metrics.port=8081"}, "metrics.port and healthProbe.port are both 8081"},
		{[]string{"serviceAccount.create=false"}, "serviceAccount.name is required"},
		{[]string{"replicaCount=2", "leaderElection.enabled=false"}, "replicaCount > 1 needs leaderElection.enabled"},
		{[]string{"hostNetwrok=true"}, "'hostNetwrok' not allowed"},
		{[]string{"dnsPolicy=Sometimes"}, "/dnsPolicy"},
	}
	for _, tc := range cases {
		var a []string
		for _, s := range tc.set {
			a = append(a, "--set", s)
		}
		_, err := helmTemplate(t, release, namespace, a...)
		switch {
		case err == nil:
			t.Errorf("--set %v: helm template succeeded, want an error naming %q", tc.set, tc.want)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("--set %v: error does not name %q:\n%v", tc.set, tc.want, err)
		}
	}
}

// TestChartArgsParseInManager: the manager binary accepts every flag and value the chart passes
// (it parses them all, then exits 0 at -h).
func TestChartArgsParseInManager(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips building the manager binary")
	}
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	manager := filepath.Join(t.TempDir(), "manager")
	if _, err := command(t, goBin, "build", "-o", manager, "./cmd/manager"); err != nil {
		t.Fatalf("build the manager: %v", err)
	}
	for _, values := range []string{"charts/slipstream/values.yaml", "test/chart/testdata/default-values.yaml", "test/chart/testdata/hostnetwork/values.yaml"} {
		a := args(t, mustHelmTemplate(t, release, namespace, "--values", values))
		if _, err := command(t, manager, append(a, "-h")...); err != nil {
			t.Errorf("values %s: the manager rejects the chart's args: %v", values, err)
		}
	}
	// The check can fail: a flag the manager does not define is rejected.
	if _, err := command(t, manager, "--no-such-flag", "-h"); err == nil {
		t.Errorf("the manager accepted --no-such-flag: this check cannot detect a wrong flag")
	}
}
