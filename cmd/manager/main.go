package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
	"github.com/slipstream-dev/slipstream/internal/controller"
)

// Default images; the Helm chart sets both flags.
const (
	DefaultAgentImage   = "ghcr.io/slipstream-dev/slipstream-agent:latest"
	DefaultCleanupImage = "ghcr.io/slipstream-dev/slipstream-manager:latest"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == controller.PurgeCommand {
		os.Exit(purgeMain(os.Args[2:], os.Stderr))
	}
	os.Exit(run())
}

func run() int {
	var (
		metricsAddr, probeAddr, agentImage, agentPullPolicy, cleanupImage, leaderNamespace string
		leaderElect                                                                        bool
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	flag.BoolVar(&leaderElect, "leader-elect", false, "elect a leader, so that only one of several manager replicas reconciles")
	flag.StringVar(&leaderNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the manager's own, in a cluster)")
	flag.StringVar(&agentImage, "agent-image", envOr("SLIPSTREAM_AGENT_IMAGE", DefaultAgentImage), "agent image for KVFolds whose spec.agent.image is empty (env SLIPSTREAM_AGENT_IMAGE)")
	flag.StringVar(&agentPullPolicy, "agent-image-pull-policy", envOr("SLIPSTREAM_AGENT_IMAGE_PULL_POLICY", ""), "pull policy of agents that run the default agent image and whose KVFold sets no spec.agent.imagePullPolicy: Always, IfNotPresent, Never, or empty for Kubernetes' default (env SLIPSTREAM_AGENT_IMAGE_PULL_POLICY)")
	flag.StringVar(&cleanupImage, "cleanup-image", envOr("SLIPSTREAM_CLEANUP_IMAGE", DefaultCleanupImage), "image of the node cleanup Jobs (dataRetention: Delete); its entrypoint must be this manager (env SLIPSTREAM_CLEANUP_IMAGE)")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")
	switch corev1.PullPolicy(agentPullPolicy) {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		fmt.Fprintf(os.Stderr, "manager: --agent-image-pull-policy %q: want Always, IfNotPresent, Never or empty\n", agentPullPolicy)
		return 2
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	grace := 30 * time.Second
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "slipstream-manager.slipstream.dev",
		LeaderElectionNamespace:       leaderNamespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &grace,
		Cache:                         controller.CacheOptions(),
	})
	if err != nil {
		log.Error(err, "create manager")
		return 1
	}
	ctx := ctrl.SetupSignalHandler()
	r := &controller.KVFoldReconciler{
		Client:               mgr.GetClient(),
		Scheme:               mgr.GetScheme(),
		Recorder:             mgr.GetEventRecorder("slipstream-manager"),
		AgentImage:           agentImage,
		AgentImagePullPolicy: corev1.PullPolicy(agentPullPolicy),
		CleanupImage:         cleanupImage,
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		log.Error(err, "set up the KVFold controller")
		return 1
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "add healthz")
		return 1
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "add readyz")
		return 1
	}
	log.Info("starting manager", "agentImage", agentImage, "cleanupImage", cleanupImage, "leaderElect", leaderElect)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "manager stopped")
		return 1
	}
	return 0
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}
