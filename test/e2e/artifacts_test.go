package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	. "github.com/onsi/ginkgo/v2"
)

// The folds the specs created, so a failed spec's artifacts include their agents' state.
var (
	foldsMu sync.Mutex
	folds   = map[string]*fold{}
)

func registerFold(f *fold) {
	foldsMu.Lock()
	defer foldsMu.Unlock()
	folds[f.name] = f
}

func unregisterFold(f *fold) {
	foldsMu.Lock()
	defer foldsMu.Unlock()
	delete(folds, f.name)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// On failure, save what explains it: statuses, events, logs, agent status and metrics, and
// the processes' logs, under <artifacts>/<spec>/.
var _ = JustAfterEach(func() {
	if !CurrentSpecReport().Failed() || kube == nil {
		return
	}
	anySpecFailed = true
	dir := filepath.Join(suite.artifacts, unsafeName.ReplaceAllString(CurrentSpecReport().FullText(), "_"))
	collectArtifacts(dir)
	fmt.Fprintf(GinkgoWriter, "artifacts of the failed spec: %s\n", dir)
})

func collectArtifacts(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(GinkgoWriter, "artifacts: %v\n", err)
		return
	}
	save := func(name, content string, err error) {
		if err != nil {
			content += "\n# error: " + err.Error()
		}
		_ = os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	kc := func(name string, args ...string) {
		out, err := kubectl(args...)
		save(name, out, err)
	}
	kc("kvfolds.yaml", "get", "kvfolds,kvfoldnodes", "-A", "-o", "yaml")
	kc("kvfolds.txt", "get", "kvfolds,kvfoldnodes", "-A", "-o", "wide")
	kc("workloads.txt", "get", "all,leases,jobs,serviceaccounts,roles,rolebindings", "-n", testNamespace, "-o", "wide")
	kc("events.txt", "get", "events", "-A", "--sort-by=.lastTimestamp")
	kc("pods-describe.txt", "describe", "pods", "-n", testNamespace)
	kc("manager-describe.txt", "describe", "pods", "-n", releaseNamespace)
	kc("nodes.yaml", "get", "nodes", "-o", "yaml")
	kc("manager.log", "logs", "-n", releaseNamespace, "-l", "app.kubernetes.io/name=slipstream", "--all-containers", "--prefix", "--tail=2000")
	kc("agents.log", "logs", "-n", testNamespace, "-l", "app.kubernetes.io/component=agent", "--all-containers", "--prefix", "--tail=2000")
	kc("agents-previous.log", "logs", "-n", testNamespace, "-l", "app.kubernetes.io/component=agent", "--all-containers", "--prefix", "--previous", "--tail=500")
	foldsMu.Lock()
	defer foldsMu.Unlock()
	for name, f := range folds {
		st, err := f.status()
		save("agent-"+name+"-status.txt", fmt.Sprintf("%+v", st), err)
		series, _, err := scrape(f.apiURL())
		var b []byte
		for k, v := range series {
			b = fmt.Appendf(b, "%s %v\n", k, v)
		}
		save("agent-"+name+"-metrics.txt", string(b), err)
		// A stopped agent's fold can be dumped from its host directory.
		out, err := run(suite.root, suite.agentBin, "dump", "--data-dir", f.storeDir())
		save("agent-"+name+"-dump.ndjson", out, err)
	}
	if suite.nats != nil && suite.nats.p != nil {
		save("nats-server.log", suite.nats.p.Output(), nil)
	}
	peersMu.Lock()
	for _, p := range peers {
		save(unsafeName.ReplaceAllString(p.Name(), "_")+".log", p.Output(), nil)
	}
	peersMu.Unlock()
}
