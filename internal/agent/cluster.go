package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// Cluster-mode defaults (ClusterConfig's zero values).
const (
	// DefaultStatusInterval: at most one KVFoldNode status write per interval, unless the
	// phase changes (then at once). With a status that only changes while the bucket does,
	// that is <= 0.1 writes/s per node.
	DefaultStatusInterval = 10 * time.Second
	// DefaultClusterRetryMax caps the retry delay after an API error (403/404 before the
	// controller has granted and created the agent's objects, an unreachable API server).
	DefaultClusterRetryMax = 30 * time.Second
	// The export Lease: the holder renews every retry period (one write per 15 s for the
	// one holding agent); the others read it every 15-33 s. A holder that stops releases
	// it; one that dies loses it after the lease duration.
	DefaultLeaseDuration      = 60 * time.Second
	DefaultLeaseRenewDeadline = 40 * time.Second
	DefaultLeaseRetryPeriod   = 15 * time.Second
)

// ClusterConfig is the agent's identity in a KVFold's DaemonSet, from the environment the
// controller sets (api/v1alpha1/agent_contract.go).
type ClusterConfig struct {
	Fold        string // SLIPSTREAM_KVFOLD_NAME
	Namespace   string // SLIPSTREAM_KVFOLD_NAMESPACE
	Node        string // SLIPSTREAM_NODE_NAME
	Pod         string // SLIPSTREAM_POD_NAME: the export Lease holder identity
	ExportLease string // SLIPSTREAM_EXPORT_LEASE; required with --export-url

	// REST reaches the API server; nil: the in-cluster configuration (the Pod's
	// ServiceAccount token, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT).
	REST *rest.Config

	// Timings; zero means the default above (tests shorten them).
	StatusInterval     time.Duration
	RetryMax           time.Duration
	LeaseDuration      time.Duration
	LeaseRenewDeadline time.Duration
	LeaseRetryPeriod   time.Duration
}

// parseClusterEnv reads the cluster identity; nil (standalone) without EnvFoldName.
func parseClusterEnv(getenv func(string) (string, bool), exports bool) (*ClusterConfig, error) {
	fold, ok := getenv(v1alpha1.EnvFoldName)
	if !ok {
		return nil, nil
	}
	get := func(name string) string { v, _ := getenv(name); return strings.TrimSpace(v) }
	c := &ClusterConfig{
		Fold: strings.TrimSpace(fold), Namespace: get(v1alpha1.EnvFoldNamespace), Node: get(v1alpha1.EnvNodeName),
		Pod: get(v1alpha1.EnvPodName), ExportLease: get(v1alpha1.EnvExportLease),
	}
	check := func(env, v string, required bool, valid func(string) []string) error {
		switch {
		case v == "" && required:
			return configErrorf("%s is set (cluster mode) but %s is empty or unset", v1alpha1.EnvFoldName, env)
		case v == "":
			return nil
		}
		if errs := valid(v); len(errs) > 0 {
			return configErrorf("%s %q: %s", env, v, strings.Join(errs, "; "))
		}
		return nil
	}
	for _, f := range []struct {
		env, v   string
		required bool
		valid    func(string) []string
	}{
		{v1alpha1.EnvFoldName, c.Fold, true, validation.IsDNS1123Subdomain},
		{v1alpha1.EnvFoldNamespace, c.Namespace, true, validation.IsDNS1123Label},
		{v1alpha1.EnvNodeName, c.Node, true, validation.IsDNS1123Subdomain},
		{v1alpha1.EnvPodName, c.Pod, true, validation.IsDNS1123Subdomain},
		{v1alpha1.EnvExportLease, c.ExportLease, exports, validation.IsDNS1123Subdomain},
	} {
		if err := check(f.env, f.v, f.required, f.valid); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *ClusterConfig) defaults() {
	or := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	or(&c.StatusInterval, DefaultStatusInterval)
	or(&c.RetryMax, DefaultClusterRetryMax)
	or(&c.LeaseDuration, DefaultLeaseDuration)
	or(&c.LeaseRenewDeadline, DefaultLeaseRenewDeadline)
	or(&c.LeaseRetryPeriod, DefaultLeaseRetryPeriod)
}

// cluster is the agent's in-cluster side: it follows its KVFold (the export-now
// annotation), reports to its KVFoldNode's status and elects the exporter with the fold's
// Lease. None of it stops the fold: API errors are retried with backoff.
type cluster struct {
	cfg      ClusterConfig
	a        *Agent
	c        client.WithWatch
	log      *slog.Logger
	nodeName string // KVFoldNodeName(fold, node)
	exportTo string // export location for lastExport.url ("" : no exports)

	statusNow chan struct{} // the phase changed: write the status now
	exportNow chan struct{} // the annotation changed, or this agent became the exporter
	want      atomic.Pointer[string]
	elector   *elector // nil without exports
}

// newCluster builds the API client. A missing in-cluster configuration is a ConfigError.
func newCluster(cfg ClusterConfig, a *Agent, log *slog.Logger) (*cluster, error) {
	cfg.defaults()
	rc := cfg.REST
	if rc == nil {
		var err error
		if rc, err = rest.InClusterConfig(); err != nil {
			return nil, configErrorf("%s is set (cluster mode) but there is no in-cluster API configuration: %v", v1alpha1.EnvFoldName, err)
		}
	}
	routeLibraryLogs(log)
	rc = rest.CopyConfig(rc)
	rc.UserAgent = "slipstream-agent/" + cfg.Node
	c, err := client.NewWithWatch(rc, client.Options{Scheme: clusterScheme(), Mapper: clusterMapper()})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	k := &cluster{
		cfg: cfg, a: a, c: c, log: log.With("fold", cfg.Namespace+"/"+cfg.Fold, "node", cfg.Node),
		nodeName:  v1alpha1.KVFoldNodeName(cfg.Fold, cfg.Node),
		statusNow: make(chan struct{}, 1), exportNow: make(chan struct{}, 1),
	}
	if a.loc != nil {
		k.exportTo = a.loc.String()
		if k.elector, err = newElector(k, rc); err != nil {
			return nil, err
		}
	}
	return k, nil
}

var libraryLogsOnce sync.Once

// routeLibraryLogs sends the logs of client-go (klog: leader election, watches) and of
// controller-runtime's client (logr; unset, it prints a warning with a stack trace) to the
// agent's log. Both loggers are process-wide: the first agent's, when a test runs several.
func routeLibraryLogs(log *slog.Logger) {
	libraryLogsOnce.Do(func() {
		klog.SetSlogLogger(log)
		ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	})
}

// clusterScheme knows the kinds the agent reads and writes.
func clusterScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err) // static registration; cannot fail
	}
	if err := coordinationv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// clusterMapper maps the agent's kinds without API discovery (which its Role need not
// allow, and which would cost requests at every start of every agent).
func clusterMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(v1alpha1.GroupVersion.WithKind("KVFold"), meta.RESTScopeNamespace)
	m.Add(v1alpha1.GroupVersion.WithKind("KVFoldNode"), meta.RESTScopeNamespace)
	m.Add(coordinationv1.SchemeGroupVersion.WithKind("Lease"), meta.RESTScopeNamespace)
	return m
}

// poke signals ch without blocking.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// phaseChanged is the tracker's hook: the status goes out at once.
func (k *cluster) phaseChanged() { poke(k.statusNow) }

// run runs the cluster loops until ctx ends (after the fold drained: the last status
// write then carries the final cursor, and the export Lease is released).
func (k *cluster) run(ctx context.Context) {
	k.log.Info("cluster mode: reporting to KVFoldNode", "kvfoldnode", k.nodeName, "pod", k.cfg.Pod)
	var wg sync.WaitGroup
	loops := []func(context.Context){k.reportStatus, k.followFold}
	if k.elector != nil {
		loops = append(loops, k.elector.campaign, k.elector.exportOnRequest)
	}
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	wg.Wait()
}

// newRetry is the backoff for API errors.
func (k *cluster) newRetry() *backoff {
	b := newBackoff()
	b.max = k.cfg.RetryMax
	return b
}

// apiProblem explains an API error for the log: 404 and 403 before the controller has
// created and granted the agent's objects are expected at start.
func apiProblem(err error) string {
	switch {
	case apierrors.IsNotFound(err):
		return "not found (yet: the controller creates it once it sees this Pod)"
	case apierrors.IsForbidden(err):
		return "forbidden (yet: the controller grants access once it sees this Pod)"
	case apierrors.IsUnauthorized(err):
		return "unauthorized (the ServiceAccount token was refused)"
	}
	return "failed"
}

// followFold watches the agent's KVFold (one name: RBAC allows get/list/watch of it only)
// for the export-now annotation. It lists then watches from the list's version, and lists
// again when the watch ends; errors are retried with backoff.
func (k *cluster) followFold(ctx context.Context) {
	bo := k.newRetry()
	var lastProblem string
	for {
		err := k.watchFoldOnce(ctx, bo)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			continue // the server ended the watch: list again
		}
		if p := apiProblem(err); p != lastProblem {
			lastProblem = p
			k.log.Warn("reading the KVFold "+p+"; retrying", logError, err)
		} else {
			k.log.Debug("reading the KVFold failed; retrying", logError, err)
		}
		if !bo.sleep(ctx) {
			return
		}
	}
}

func (k *cluster) watchFoldOnce(ctx context.Context, bo *backoff) error {
	sel := client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", k.cfg.Fold)}
	var list v1alpha1.KVFoldList
	if err := k.c.List(ctx, &list, client.InNamespace(k.cfg.Namespace), sel); err != nil {
		return fmt.Errorf("list kvfold %s: %w", k.cfg.Fold, err)
	}
	bo.reset()
	if len(list.Items) == 0 {
		k.foldSeen(nil)
	}
	for i := range list.Items {
		k.foldSeen(&list.Items[i])
	}
	w, err := k.c.Watch(ctx, &v1alpha1.KVFoldList{}, client.InNamespace(k.cfg.Namespace), sel,
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	if err != nil {
		return fmt.Errorf("watch kvfold %s: %w", k.cfg.Fold, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if f, ok := ev.Object.(*v1alpha1.KVFold); ok {
					k.foldSeen(f)
				}
			case watch.Deleted:
				k.foldSeen(nil)
			case watch.Error:
				return fmt.Errorf("watch kvfold %s: %w", k.cfg.Fold, apierrors.FromObject(ev.Object))
			}
		}
	}
}

// foldSeen records the export-now annotation of the fold (nil: the fold is gone).
func (k *cluster) foldSeen(f *v1alpha1.KVFold) {
	v := ""
	if f != nil {
		v = f.Annotations[v1alpha1.ExportNowAnnotation]
		if f.Spec.Bucket != k.a.cfg.Bucket {
			k.log.Warn("the KVFold names another bucket than this agent folds; the controller rolls out a new agent", "specBucket", f.Spec.Bucket, logBucket, k.a.cfg.Bucket)
		}
	}
	if old := k.want.Swap(&v); old == nil || *old != v {
		poke(k.exportNow)
	}
}

// wanted is the current value of the export-now annotation ("" : none).
func (k *cluster) wanted() string {
	if p := k.want.Load(); p != nil {
		return *p
	}
	return ""
}
