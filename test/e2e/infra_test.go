package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
)

// run runs a command in dir and returns its combined output.
func run(dir string, name string, args ...string) (string, error) {
	return runIn(dir, nil, nil, name, args...)
}

// runIn runs a command with extra environment and optional stdin; combined output.
func runIn(dir string, env []string, stdin io.Reader, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(bg, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), err
}

// tool returns the path hack/tool.sh prints for a pinned tool (building it the first time,
// with its progress on stderr).
func tool(name string) string {
	GinkgoHelper()
	cmd := exec.Command("bash", "hack/tool.sh", name)
	cmd.Dir = suite.root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "hack/tool.sh %s", name)
	return strings.TrimSpace(string(out))
}

func mustRun(dir string, name string, args ...string) string {
	GinkgoHelper()
	out, err := run(dir, name, args...)
	Expect(err).NotTo(HaveOccurred())
	return out
}

// make runs a Makefile target with its output streamed (the first cluster-up compiles
// Kubernetes for minutes: the progress must show).
func makeTarget(target string) {
	GinkgoHelper()
	fmt.Fprintf(os.Stderr, "e2e: make %s\n", target)
	cmd := exec.Command("make", "--no-print-directory", target)
	cmd.Dir = suite.root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	Expect(cmd.Run()).To(Succeed(), "make %s", target)
}

// clusterHealthy reports whether the API server of the local cluster answers /readyz.
func clusterHealthy() bool {
	if _, err := os.Stat(suite.kubectl); err != nil {
		return false
	}
	_, err := run(suite.root, suite.kubectl, "--kubeconfig", suite.kubeconfig, "--request-timeout=5s", "get", "--raw", "/readyz")
	return err == nil
}

// kubectl runs bin/k8s/kubectl against the cluster.
func kubectl(args ...string) (string, error) {
	return run(suite.root, suite.kubectl, append([]string{"--kubeconfig", suite.kubeconfig}, args...)...)
}

// kubectlApply applies a manifest from stdin.
func kubectlApply(manifest string) (string, error) {
	return runIn(suite.root, nil, strings.NewReader(manifest), suite.kubectl, "--kubeconfig", suite.kubeconfig, "apply", "-f", "-")
}

func helm(args ...string) (string, error) {
	return runIn(suite.root, []string{"KUBECONFIG=" + suite.kubeconfig}, nil, suite.helm, args...)
}

// splitImage splits repo:tag.
func splitImage(img string) (string, string) {
	i := strings.LastIndex(img, ":")
	if i < 0 || strings.Contains(img[i:], "/") {
		return img, "latest"
	}
	return img[:i], img[i+1:]
}

// helmValues are the --set flags of the test cluster's profile: the local images (imported
// into containerd, never pulled), the manager on the host network reaching the API server on
// 127.0.0.1:6443, and its ports moved off 8080/8081 so they cannot clash on the host.
func helmValues() []string {
	mRepo, mTag := splitImage(suite.managerImg)
	aRepo, aTag := splitImage(suite.agentImg)
	return []string{
		"--set", "image.repository=" + mRepo, "--set", "image.tag=" + mTag, "--set", "image.pullPolicy=Never",
		"--set", "agent.image.repository=" + aRepo, "--set", "agent.image.tag=" + aTag,
		"--set", "hostNetwork=true",
		"--set", "extraEnv[0].name=KUBERNETES_SERVICE_HOST", "--set-string", "extraEnv[0].value=127.0.0.1",
		"--set", "extraEnv[1].name=KUBERNETES_SERVICE_PORT", "--set-string", "extraEnv[1].value=6443",
		"--set", "metrics.port=" + strconv.Itoa(freePort()), "--set", "healthProbe.port=" + strconv.Itoa(freePort()),
		"--set", "logLevel=debug",
	}
}

func helmInstall() {
	GinkgoHelper()
	args := append([]string{"install", releaseName, filepath.Join(suite.root, "charts", "slipstream"),
		"--namespace", releaseNamespace, "--create-namespace", "--wait", "--timeout", "3m"}, helmValues()...)
	out, err := helm(args...)
	fmt.Fprintln(GinkgoWriter, out)
	Expect(err).NotTo(HaveOccurred(), "helm install")
}

// releaseInstalled reports whether the suite's Helm release exists.
func releaseInstalled() bool {
	out, err := helm("list", "--namespace", releaseNamespace, "--short", "--all")
	return err == nil && strings.Contains(out, releaseName)
}

func helmUninstall() {
	GinkgoHelper()
	if !releaseInstalled() {
		return
	}
	out, err := helm("uninstall", releaseName, "--namespace", releaseNamespace, "--wait", "--timeout", "3m")
	fmt.Fprintln(GinkgoWriter, out)
	Expect(err).NotTo(HaveOccurred(), "helm uninstall")
	_, _ = kubectl("delete", "namespace", releaseNamespace, "--ignore-not-found", "--wait=true", "--timeout=120s")
}

// cleanupCluster removes what the suite (or an interrupted earlier run) created: the KVFolds
// (while the manager can still run their finalizers), the test namespace, the release.
func cleanupCluster() {
	GinkgoHelper()
	if releaseInstalled() {
		deleteTestNamespace()
		helmUninstall()
		return
	}
	_, err := kubectl("delete", "namespace", releaseNamespace, "--ignore-not-found", "--wait=true", "--timeout=120s")
	Expect(err).NotTo(HaveOccurred())
	// Without a manager nobody runs the finalizers: drop them so the namespace can go.
	out, _ := kubectl("get", "kvfolds", "-n", testNamespace, "-o", "name", "--ignore-not-found")
	for _, name := range strings.Fields(out) {
		_, _ = kubectl("patch", "-n", testNamespace, name, "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	}
	_, err = kubectl("delete", "namespace", testNamespace, "--ignore-not-found", "--wait=true", "--timeout=180s")
	Expect(err).NotTo(HaveOccurred())
}

// noOtherOperator fails when a Slipstream manager of another release runs (make demo's, for
// one): it would reconcile the suite's KVFolds too.
func noOtherOperator() {
	GinkgoHelper()
	out, err := kubectl("get", "deployments", "-A", "-l", "app.kubernetes.io/name=slipstream,app.kubernetes.io/component=manager",
		"-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{" "}{end}`)
	Expect(err).NotTo(HaveOccurred())
	Expect(strings.TrimSpace(out)).To(BeEmpty(),
		"another Slipstream operator runs in the cluster and would reconcile the suite's KVFolds too; remove it first (make demo-down for the demo's)")
}

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort() int {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// stopGrace is how long a process the suite started has after SIGTERM before SIGKILL.
const stopGrace = 15 * time.Second

// startProc starts cmd, a process of the suite's own: it is stopped by its PID only.
func startProc(name string, cmd *exec.Cmd) *proctest.Process {
	GinkgoHelper()
	p, err := proctest.Start(name, cmd)
	Expect(err).NotTo(HaveOccurred(), "start %s", name)
	fmt.Fprintf(GinkgoWriter, "started %s (pid %d)\n", name, p.Pid())
	return p
}

// natsProc is a nats-server process with JetStream on a fixed port and store directory, so
// it can be stopped and started again with its data.
type natsProc struct {
	port int
	dir  string
	p    *proctest.Process
}

func startNATS(dir string) *natsProc {
	GinkgoHelper()
	n := &natsProc{port: freePort(), dir: dir}
	n.start()
	return n
}

func (n *natsProc) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsProc) start() {
	GinkgoHelper()
	n.p = startProc("nats-server:"+strconv.Itoa(n.port), proctest.NATSCommand(tool("nats-server"), n.port, n.dir))
	Expect(n.p.WaitAccepting(fmt.Sprintf("127.0.0.1:%d", n.port), 20*time.Second)).To(Succeed(), "nats-server accepting connections")
}

func (n *natsProc) stop() { n.p.Stop(stopGrace) }

// peers are stand-alone agents on the host, playing a second node (see the expiry spec).
var (
	peersMu sync.Mutex
	peers   []*proctest.Process
)

func stopPeers() {
	peersMu.Lock()
	defer peersMu.Unlock()
	for _, p := range peers {
		p.Stop(stopGrace)
	}
	peers = nil
}

// startPeerAgent runs `agent run` on the host with args and waits for its read API on
// listen.
func startPeerAgent(name string, env []string, listen string, args ...string) *proctest.Process {
	GinkgoHelper()
	cmd := exec.Command(suite.agentBin, append([]string{"run", "--listen", listen}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	p := startProc(name, cmd)
	peersMu.Lock()
	peers = append(peers, p)
	peersMu.Unlock()
	return p
}
