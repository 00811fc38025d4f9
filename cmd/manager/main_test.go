package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// The process test re-runs this test binary as the manager.
func TestMain(m *testing.M) {
	if os.Getenv("SLIPSTREAM_RUN_MANAGER") == "1" {
		os.Args = append([]string{"manager"}, os.Args[1:]...)
		main()
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
}

// TestManagerProcess runs the manager as a process against a real API server: it serves
// health probes, takes the leader Lease, reconciles a KVFold into a DaemonSet, and exits 0
// soon after SIGTERM.
func TestManagerProcess(t *testing.T) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: this test needs a real etcd and kube-apiserver; run `make envtest` and `make test`, or export KUBEBUILDER_ASSETS=$PWD/bin/k8s")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	defer func() { _ = env.Stop() }()
	user, err := env.AddUser(envtest.User{Name: "manager", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kcPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "slipstream-system"}}); err != nil {
		t.Fatal(err)
	}

	probe := freePort(t)
	cmd := exec.Command(os.Args[0], "--kubeconfig="+kcPath, "--leader-elect", "--leader-election-namespace=slipstream-system",
		"--health-probe-bind-address="+probe, "--metrics-bind-address=0", "--agent-image=registry.test/agent:v1", "--agent-image-pull-policy=Never")
	cmd.Env = append(os.Environ(), "SLIPSTREAM_RUN_MANAGER=1")
	out, err := os.Create(filepath.Join(t.TempDir(), "manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("manager output:\n%s", b)
		}
	}()

	waitFor(t, "/readyz", 60*time.Second, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://%s/readyz", probe))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	waitFor(t, "the leader Lease", 60*time.Second, func() bool {
		var l coordinationv1.Lease
		err := c.Get(ctx, client.ObjectKey{Namespace: "slipstream-system", Name: "slipstream-manager.slipstream.dev"}, &l)
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != ""
	})
	fold := &v1alpha1.KVFold{
		ObjectMeta: metav1.ObjectMeta{Namespace: "slipstream-system", Name: "routes"},
		Spec:       v1alpha1.KVFoldSpec{NATS: v1alpha1.NATSSpec{URLs: []string{"nats://127.0.0.1:4222"}}, Bucket: "routes"},
	}
	if err := c.Create(ctx, fold); err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	waitFor(t, "the agent DaemonSet", 60*time.Second, func() bool {
		return c.Get(ctx, client.ObjectKey{Namespace: "slipstream-system", Name: "routes"}, &ds) == nil
	})
	if img := ds.Spec.Template.Spec.Containers[0].Image; img != "registry.test/agent:v1" {
		t.Fatalf("agent image %q, want the --agent-image default", img)
	}
	if p := ds.Spec.Template.Spec.Containers[0].ImagePullPolicy; p != corev1.PullNever {
		t.Fatalf("agent pull policy %q, want the --agent-image-pull-policy default Never", p)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("manager exited with %v after SIGTERM, want 0", err)
		}
		t.Logf("manager stopped %v after SIGTERM", time.Since(start))
	case <-time.After(40 * time.Second):
		t.Fatal("manager still running 40 s after SIGTERM")
	}
}

// TestManagerRejectsBadPullPolicy: a pull policy Kubernetes would refuse on every agent Pod
// stops the manager at start with a message naming the flag.
func TestManagerRejectsBadPullPolicy(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--agent-image-pull-policy=Sometimes")
	cmd.Env = append(os.Environ(), "SLIPSTREAM_RUN_MANAGER=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("manager with a bad pull policy: err %v, want exit status 2; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), `--agent-image-pull-policy "Sometimes"`) {
		t.Fatalf("output does not name the flag and value:\n%s", out)
	}
}
