package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/slipstream-dev/slipstream/internal/testutil/s3test"
)

const (
	// The suite's own release, apart from the demo's (slipstream in slipstream-system).
	releaseName      = "slipstream-e2e"
	releaseNamespace = "slipstream-e2e-system"
	// testNamespace holds the suite's KVFolds and Secrets.
	testNamespace = "slipstream-e2e"
	// exportBucket is the S3 bucket the folds export to.
	exportBucket = "folds"
)

// suite is what BeforeSuite set up, for the specs.
var suite struct {
	t          *testing.T // TestE2E's, for helpers that take a testing.TB (s3test)
	root       string     // the repository
	tmp        string     // the suite's temp dir (nats store, host paths, peer agents)
	hostRoot   string     // spec.storage.hostPath of every KVFold: <tmp>/host
	artifacts  string
	clusterDir string
	kubeconfig string
	kubectl    string
	helm       string
	agentBin   string // bin/agent built from this tree, for `agent dump` on the host
	node       string // the cluster's one node
	nats       *natsProc
	s3         *s3test.Server
	broughtUp  bool // the suite ran cluster-up on a cluster that was down
	managerImg string
	agentImg   string
}

// TestE2E runs the suite when SLIPSTREAM_E2E=1 (make test-e2e); plain `go test ./...`
// skips it, since it needs the one-node cluster and takes minutes.
func TestE2E(t *testing.T) {
	if os.Getenv("SLIPSTREAM_E2E") != "1" {
		t.Skip("the end-to-end suite needs the local cluster: run it with `make test-e2e` (or SLIPSTREAM_E2E=1)")
	}
	suite.t = t
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(90 * time.Second)
	SetDefaultEventuallyPollingInterval(250 * time.Millisecond)
	SetDefaultConsistentlyDuration(3 * time.Second)
	RunSpecs(t, "Slipstream end-to-end (one-node cluster)")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var _ = BeforeSuite(func() {
	var err error
	suite.root, err = filepath.Abs("../..")
	Expect(err).NotTo(HaveOccurred())
	suite.tmp, err = os.MkdirTemp("", "slipstream-e2e-")
	Expect(err).NotTo(HaveOccurred())
	suite.hostRoot = filepath.Join(suite.tmp, "host")
	suite.artifacts = envOr("SLIPSTREAM_E2E_ARTIFACTS", filepath.Join(suite.root, "_artifacts", "e2e"))
	suite.clusterDir = envOr("SLIPSTREAM_CLUSTER_DIR", "/var/tmp/slipstream-cluster")
	suite.kubeconfig = filepath.Join(suite.clusterDir, "admin.kubeconfig")
	suite.kubectl = filepath.Join(suite.root, "bin", "k8s", "kubectl")
	suite.managerImg = envOr("SLIPSTREAM_E2E_MANAGER_IMAGE", "slipstream/manager:dev")
	suite.agentImg = envOr("SLIPSTREAM_E2E_AGENT_IMAGE", "slipstream/agent:dev")

	By("ensuring the one-node cluster is up with this tree's images (make cluster-up: idempotent; it runs make images)")
	suite.broughtUp = !clusterHealthy()
	makeTarget("cluster-up")
	suite.helm = tool("helm")
	suite.agentBin = filepath.Join(suite.tmp, "agent")
	mustRun(suite.root, "go", "build", "-o", suite.agentBin, "./cmd/agent")
	connectCluster()

	By("starting nats-server (JetStream) and SeaweedFS S3 on 127.0.0.1")
	suite.nats = startNATS(filepath.Join(suite.tmp, "nats"))
	suite.s3 = s3test.Start(suite.t, exportBucket)

	By("installing the chart (helm install " + releaseName + ")")
	cleanupCluster()
	noOtherOperator()
	helmInstall()
	createTestNamespace()
	fmt.Fprintf(GinkgoWriter, "suite ready: node %s, nats %s, s3 %s, host paths under %s\n",
		suite.node, suite.nats.url(), suite.s3.Endpoint, suite.hostRoot)
})

var _ = AfterSuite(func() {
	if suite.root == "" {
		return
	}
	// Deferred, so they run even when the cluster cleanup below fails: the cluster last, the
	// suite's processes (by PID) before it.
	defer clusterDown()
	defer func() {
		if suite.nats != nil {
			suite.nats.stop()
		}
		if suite.s3 != nil {
			suite.s3.Stop()
		}
		stopPeers()
		if !CurrentSpecReport().Failed() && !anySpecFailed {
			_ = os.RemoveAll(suite.tmp)
		} else {
			fmt.Fprintf(GinkgoWriter, "keeping the suite's temp dir %s for inspection\n", suite.tmp)
		}
	}()
	if kube != nil {
		By("deleting the suite's KVFolds and namespace, then uninstalling the chart")
		cleanupCluster()
	}
})

// clusterDown tears the cluster down per SLIPSTREAM_E2E_CLUSTER_DOWN (see doc.go).
func clusterDown() {
	switch mode := envOr("SLIPSTREAM_E2E_CLUSTER_DOWN", "auto"); mode {
	case "always":
		makeTarget("cluster-down")
	case "never":
	case "auto":
		if suite.broughtUp && os.Getenv("CI") != "" {
			makeTarget("cluster-down")
		} else {
			fmt.Fprintln(GinkgoWriter, "leaving the cluster up for the next run; `make cluster-down` removes it")
		}
	default:
		Fail(fmt.Sprintf("SLIPSTREAM_E2E_CLUSTER_DOWN=%q: want always, never or auto", mode))
	}
}

// anySpecFailed is set by the artifact collector, so AfterSuite keeps the temp dir.
var anySpecFailed bool

// bg is the context of API calls that the spec's own deadlines bound.
var bg = context.Background()
