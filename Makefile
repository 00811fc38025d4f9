# Slipstream Makefile (kubebuilder layout). `make help` lists the targets.
#
# Tool versions are pinned in hack/versions.env (one place). Tools are built once per version
# into ${XDG_CACHE_HOME:-$HOME/.cache}/slipstream/tools/ (outside the clone, so fresh clones and
# CI on the same machine reuse them) and linked into ./bin by hack/tool.sh.

include hack/versions.env

# Setting SHELL to bash allows bash commands to be executed by recipes.
# Options are set to exit when a recipe line exits non-zero or a piped command fails.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

GO ?= go
LOCALBIN ?= $(CURDIR)/bin
export LOCALBIN

## Tool binaries (symlinks into the version cache, made by `make tools` / hack/tool.sh).
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
NATS_SERVER ?= $(LOCALBIN)/nats-server
NATS ?= $(LOCALBIN)/nats

## The chart test (test/chart) runs these; `make chart-tools` builds them.
HELM ?= $(LOCALBIN)/helm
KUBECTL ?= $(LOCALBIN)/k8s/kubectl
export HELM KUBECTL
CHART_DIR ?= charts/slipstream

## Controller tests (envtest) find etcd and kube-apiserver here; `make envtest` builds them.
KUBEBUILDER_ASSETS ?= $(LOCALBIN)/k8s
export KUBEBUILDER_ASSETS

## Test knobs.
# Whole-suite timeout for one package's tests (go test -timeout).
TEST_TIMEOUT ?= 20m
# Extra flags for every go test run, e.g. GOTEST_FLAGS=-race or GOTEST_FLAGS=-v.
GOTEST_FLAGS ?=
# How much `make test` fuzzes each target (go test -fuzztime). A count, not a duration: Go 1.26's
# fuzz coordinator can report its own -fuzztime deadline as a failure ("context deadline
# exceeded", go.dev/issue/75804, fixed in 1.27) when a loaded machine starves its workers.
FUZZTIME ?= 10000x

# Binaries are static so they can be packed into images without a libc.
BUILD_CGO_ENABLED ?= 0

.PHONY: all
all: build

##@ General

# The help target prints out all targets with their descriptions organized
# beneath their categories. The categories are represented by '##@' and the
# target descriptions by '##'.
.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: fmt
fmt: ## Run go fmt against code.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	$(GO) vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint (config: .golangci.yml).
	$(GOLANGCI_LINT) run ./...

.PHONY: lint-fix
lint-fix: golangci-lint ## Run golangci-lint and apply its fixes (including gofmt/goimports).
	$(GOLANGCI_LINT) run --fix ./...

.PHONY: lint-config
lint-config: golangci-lint ## Verify .golangci.yml against the linter's schema.
	$(GOLANGCI_LINT) config verify

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC (config/crd/bases, config/rbac) from markers.
	@if ! ls api/*/*_types.go >/dev/null 2>&1; then \
		echo "manifests: no API types yet (api/<version>/*_types.go): nothing to generate"; \
	else \
		set -x; $(CONTROLLER_GEN) rbac:roleName=manager-role crd:allowDangerousTypes=true paths="./api/...;./internal/controller/..." output:crd:artifacts:config=config/crd/bases; \
	fi
	@$(MAKE) --no-print-directory chart-sync

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods (zz_generated.deepcopy.go) from markers.
	@if ! ls api/*/*_types.go >/dev/null 2>&1; then \
		echo "generate: no API types yet (api/<version>/*_types.go): nothing to generate"; \
	else \
		set -x; $(CONTROLLER_GEN) object paths="./api/..."; \
	fi

.PHONY: test
test: test-chart test-integration test-faults test-fuzz test-e2e ## Run every test tier: all go tests (unit + integration against real servers; test-unit is their -short subset), short fuzzing, then the end-to-end suite on the local cluster.

# Fault-injection suite: agent kills per backend (NATS restarts: max(20, FAULT_CYCLES/5)).
# The default keeps `make test` bounded (a few minutes); raise it for a soak.
FAULT_CYCLES ?= 100
FAULT_TIMEOUT ?= 30m

.PHONY: test-faults
test-faults: nats-server ## Fault-injection suite (test/faults; root for its tmpfs): kill -9, NATS restarts, partitions, full disk, stalled watchers, corruption. FAULT_CYCLES scales it.
	SLIPSTREAM_FAULTS=1 FAULT_CYCLES=$(FAULT_CYCLES) $(GO) test -count=1 -timeout $(FAULT_TIMEOUT) -v $(GOTEST_FLAGS) ./test/faults/

.PHONY: test-unit
test-unit: ## Fast loop: go test -short ./... (skips the slow tests).
	$(GO) test -short -timeout $(TEST_TIMEOUT) $(GOTEST_FLAGS) ./...

.PHONY: test-integration
test-integration: ## All go tests, including the slow ones against a real (embedded) nats-server.
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(GOTEST_FLAGS) ./...

.PHONY: test-fuzz
test-fuzz: ## Run every Fuzz* target for FUZZTIME (default 10000x: executions) each.
	FUZZTIME=$(FUZZTIME) GO=$(GO) hack/fuzz.sh

.PHONY: test-race
test-race: ## All go tests under the race detector (slower; needs cgo).
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(GOTEST_FLAGS) ./...

.PHONY: test-controller
test-controller: envtest ## Only the controller suite (envtest: a real etcd + kube-apiserver from bin/k8s).
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(GOTEST_FLAGS) ./internal/controller/...

# Whole-run timeout of the end-to-end suite; a cold first run includes building Kubernetes.
E2E_TIMEOUT ?= 75m

.PHONY: test-e2e
test-e2e: ## End-to-end suite (test/e2e) on the local one-node cluster: cluster-up, images, helm install, real NATS and S3 (first run builds Kubernetes, ~20 min).
	$(MAKE) nats-server weed
	SLIPSTREAM_E2E=1 $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -v $(GOTEST_FLAGS) ./test/e2e/ -ginkgo.v

# The controller suite (internal/controller) runs against a real etcd + kube-apiserver and
# fails without them: build them first (instant once cached).
test-unit test-integration test-race: envtest
# So does the chart test (test/chart) without helm and kubectl.
test-unit test-integration test-race: chart-tools

.PHONY: test-chart
test-chart: chart-tools ## helm lint + helm template of charts/slipstream compared with kubectl kustomize of config/.
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(GOTEST_FLAGS) ./test/chart/...

.PHONY: bench
bench: ## Run every benchmark (each area in its own process) and write docs/benchmarks.md + docs/bench-restart.png; QUICK=1: scaled-down smoke run into _output/bench-quick.
	GO=$(GO) $(if $(QUICK),QUICK=$(QUICK)) $(if $(BENCH_ONLY),BENCH_ONLY=$(BENCH_ONLY)) hack/bench.sh

##@ Build

# Binaries under ./cmd; a command whose directory does not exist yet is skipped.
COMMANDS ?= agent manager

.PHONY: build
build: ## Build bin/agent and bin/manager (static; skips commands not written yet).
	@mkdir -p $(LOCALBIN)
	@for c in $(COMMANDS); do \
		if [ -d cmd/$$c ]; then \
			echo "CGO_ENABLED=$(BUILD_CGO_ENABLED) $(GO) build -o $(LOCALBIN)/$$c ./cmd/$$c"; \
			CGO_ENABLED=$(BUILD_CGO_ENABLED) $(GO) build -o $(LOCALBIN)/$$c ./cmd/$$c; \
		else \
			echo "build: ./cmd/$$c does not exist yet: skipping bin/$$c"; \
		fi; \
	done

##@ Helm chart

.PHONY: chart-sync
chart-sync: ## Copy the generated CRDs and manager ClusterRole (config/) into charts/slipstream (`make manifests` runs it).
	rm -f $(CHART_DIR)/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART_DIR)/crds/
	cp config/rbac/role.yaml $(CHART_DIR)/files/manager-role.yaml

.PHONY: chart-tools
chart-tools: ## Ensure bin/helm (HELM_VERSION) and bin/k8s/kubectl, for the chart test.
	@hack/tool.sh helm >/dev/null
	hack/k8s-assets.sh kubectl

##@ Demo

.PHONY: demo
demo: ## The demo on a local one-node Kubernetes cluster: operator via helm, NATS, S3, a KVFold, a writer (hack/demo.sh; the first run compiles Kubernetes, ~20 min).
	@hack/apt-ensure.sh curl jq
	LOCALBIN=$(LOCALBIN) bash hack/demo.sh

.PHONY: demo-down
demo-down: ## Remove everything `make demo` started: KVFold, release, processes, and the cluster if the demo brought it up (hack/demo-down.sh).
	LOCALBIN=$(LOCALBIN) bash hack/demo-down.sh

.PHONY: demo-local
demo-local: ## The demo without Kubernetes: a local nats-server, a bucket and an agent folding it (hack/demo-local.sh).
	@hack/apt-ensure.sh curl jq
	$(MAKE) build COMMANDS=agent
	$(MAKE) nats-server nats
	NATS_SERVER=$(NATS_SERVER) NATS=$(NATS) LOCALBIN=$(LOCALBIN) bash hack/demo-local.sh

.PHONY: demo-local-down
demo-local-down: ## Stop the local demo and remove what it started (hack/demo-local-down.sh).
	LOCALBIN=$(LOCALBIN) bash hack/demo-local-down.sh

##@ Local cluster

# Images packed without a registry (hack/imagepack) and imported into the cluster's containerd;
# Pods use them with imagePullPolicy IfNotPresent or Never.
IMAGE_TAG ?= dev
MANAGER_IMAGE ?= slipstream/manager:$(IMAGE_TAG)
AGENT_IMAGE ?= slipstream/agent:$(IMAGE_TAG)
PAUSE_IMAGE ?= slipstream/pause:$(IMAGE_TAG)
# State of the local cluster (outside the clone): kubeconfig, cluster.env, logs, containerd.
SLIPSTREAM_CLUSTER_DIR ?= /var/tmp/slipstream-cluster
CLUSTER_ENV = LOCALBIN=$(LOCALBIN) GO=$(GO) SLIPSTREAM_CLUSTER_DIR=$(SLIPSTREAM_CLUSTER_DIR) \
	MANAGER_IMAGE=$(MANAGER_IMAGE) AGENT_IMAGE=$(AGENT_IMAGE) PAUSE_IMAGE=$(PAUSE_IMAGE)

.PHONY: images
images: ## Build the manager, agent and pause images (bin/images/*.tar); import them if the local cluster runs.
	@$(CLUSTER_ENV) hack/cluster/images.sh

.PHONY: cluster-up
cluster-up: ## Start the one-node local cluster with the images imported (root; the first run builds Kubernetes, ~14 min).
	@$(CLUSTER_ENV) hack/cluster-up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and undo every host change it made.
	@$(CLUSTER_ENV) hack/cluster-down.sh

.PHONY: cluster-smoke
cluster-smoke: nats-server nats ## Check the running local cluster: an agent DaemonSet and a manager Pod on the host network (hack/cluster/smoke.sh).
	@$(CLUSTER_ENV) hack/cluster/smoke.sh

##@ Tools

.PHONY: tools
tools: controller-gen golangci-lint nats-server nats helm weed ## Build (once per version) and link every pinned tool into ./bin.

.PHONY: controller-gen
controller-gen: ## Ensure bin/controller-gen (CONTROLLER_TOOLS_VERSION).
	@hack/tool.sh controller-gen >/dev/null

.PHONY: golangci-lint
golangci-lint: ## Ensure bin/golangci-lint (GOLANGCI_LINT_VERSION).
	@hack/tool.sh golangci-lint >/dev/null

.PHONY: nats-server
nats-server: ## Ensure bin/nats-server (NATS_SERVER_VERSION), for end-to-end tests and the demo.
	@hack/tool.sh nats-server >/dev/null

.PHONY: nats
nats: ## Ensure bin/nats, the NATS CLI (NATSCLI_VERSION).
	@hack/tool.sh nats >/dev/null

.PHONY: helm
helm: ## Ensure bin/helm (HELM_VERSION), for the chart and the local cluster (~3 min cold).
	@hack/tool.sh helm >/dev/null

.PHONY: weed
weed: ## Ensure bin/weed, SeaweedFS (SEAWEEDFS_VERSION): the real S3 server for the export tests (~4 min cold).
	@hack/seaweedfs.sh >/dev/null

.PHONY: envtest
envtest: ## Build etcd + kube-apiserver into bin/k8s for controller tests (KUBEBUILDER_ASSETS; ~6 min cold).
	hack/k8s-assets.sh envtest

.PHONY: k8s-assets
k8s-assets: ## Build etcd + all Kubernetes binaries into bin/k8s, for a local cluster (~14 min cold).
	hack/k8s-assets.sh cluster

.PHONY: versions
versions: ## Print the pinned tool versions.
	@grep -E '^[A-Z_]+=' hack/versions.env

##@ Cleanup

.PHONY: clean
clean: ## Remove ./bin (the tool cache outside the clone is kept).
	rm -rf $(LOCALBIN)
