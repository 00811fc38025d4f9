package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

const (
	// notLiveGrace: a Lease holder that has not been Live for this long gives the Lease
	// up, so a stuck agent does not stop the fleet's exports; only Live agents campaign.
	notLiveGrace = 30 * time.Second
	// exportNowRetry: how often a pending export-now request is tried again (an export
	// already running, the fold not Live yet).
	exportNowRetry = 2 * time.Second
)

// elector elects the fold's exporter with its coordination.k8s.io Lease (client-go's
// leader election on a LeaseLock: get and update only, the controller creates the Lease;
// holder identity = the Pod's name). Only the holder exports, on the schedule and when the
// KVFold's export-now annotation changes. The last export-now value handled is kept in an
// annotation of the Lease, so a new holder does not export for a value handled before.
type elector struct {
	k     *cluster
	lease coordclient.LeasesGetter

	mu       sync.Mutex
	leading  context.Context // non-nil while this agent holds the Lease
	holder   string          // the holder last seen
	handled  string          // export-now value last handled (valid while known)
	known    bool            // handled was read from the Lease in this term
	inFlight bool            // an export-now export runs
}

var _ leaderGate = (*elector)(nil)

func newElector(k *cluster, rc *rest.Config) (*elector, error) {
	cc, err := coordclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes lease client: %w", err)
	}
	return &elector{k: k, lease: cc}, nil
}

// leader implements leaderGate.
func (e *elector) leader() (context.Context, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leading == nil || e.leading.Err() != nil {
		return nil, false
	}
	return e.leading, true
}

// describe implements leaderGate.
func (e *elector) describe() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.holder
	if h == "" {
		h = "nobody yet"
	}
	return fmt.Sprintf("the export Lease %s/%s is held by %s", e.k.cfg.Namespace, e.k.cfg.ExportLease, h)
}

// campaign runs the election while the agent is Live, until ctx ends (then a held Lease
// is released, so another agent takes over at once).
func (e *elector) campaign(ctx context.Context) {
	cfg := e.k.cfg
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.ExportLease},
		Client:     e.lease,
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Pod},
	}
	for {
		if !e.waitLive(ctx) {
			return
		}
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   cfg.LeaseDuration,
			RenewDeadline:   cfg.LeaseRenewDeadline,
			RetryPeriod:     cfg.LeaseRetryPeriod,
			ReleaseOnCancel: true,
			Name:            cfg.ExportLease,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: e.started,
				OnStoppedLeading: e.stopped,
				OnNewLeader:      e.newLeader,
			},
		})
		if err != nil { // the timings are checked by the config; cannot happen
			e.k.log.Error("export election disabled", logError, err)
			return
		}
		cctx, cancel := context.WithCancel(ctx)
		go e.stepDownWhenNotLive(cctx, cancel)
		le.Run(cctx)
		cancel()
		if !sleepCtx(ctx, cfg.LeaseRetryPeriod) {
			return
		}
	}
}

// waitLive waits until the fold is Live; false when ctx ended.
func (e *elector) waitLive(ctx context.Context) bool {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for e.k.a.tracker.phase() != PhaseLive {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// stepDownWhenNotLive cancels the campaign once the fold has not been Live for notLiveGrace.
func (e *elector) stepDownWhenNotLive(ctx context.Context, cancel context.CancelFunc) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if e.k.a.tracker.phase() == PhaseLive {
			since = time.Time{}
			continue
		}
		if since.IsZero() {
			since = time.Now()
		}
		if time.Since(since) >= notLiveGrace {
			e.k.log.Warn("not Live for too long: leaving the export election", "grace", notLiveGrace)
			cancel()
			return
		}
	}
}

func (e *elector) started(ctx context.Context) {
	e.mu.Lock()
	if ctx.Err() != nil {
		e.mu.Unlock()
		return
	}
	e.leading, e.holder, e.known = ctx, e.k.cfg.Pod, false
	e.mu.Unlock()
	e.k.log.Info("holding the export Lease: this agent exports", "lease", e.k.cfg.ExportLease)
	poke(e.k.exportNow)
}

func (e *elector) stopped() {
	e.mu.Lock()
	was := e.leading != nil
	e.leading, e.known = nil, false
	e.mu.Unlock()
	if was {
		e.k.log.Info("export Lease released or lost: this agent no longer exports", "lease", e.k.cfg.ExportLease)
	}
}

func (e *elector) newLeader(id string) {
	e.mu.Lock()
	e.holder = id
	e.mu.Unlock()
}

// exportOnRequest exports when the KVFold's export-now annotation takes a value the Lease
// has not seen handled, while this agent holds the Lease.
func (e *elector) exportOnRequest(ctx context.Context) {
	t := time.NewTicker(exportNowRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.k.exportNow:
		case <-t.C:
		}
		e.maybeExportNow(ctx)
	}
}

func (e *elector) maybeExportNow(ctx context.Context) {
	want := e.k.wanted()
	if want == "" {
		return
	}
	lctx, ok := e.leader()
	if !ok {
		return
	}
	e.mu.Lock()
	busy, known, handled := e.inFlight, e.known, e.handled
	e.mu.Unlock()
	if busy {
		return
	}
	if !known {
		h, err := e.readHandled(lctx)
		if err != nil {
			e.k.log.Warn("read the export Lease; retrying", logError, err)
			return
		}
		e.mu.Lock()
		e.handled, e.known, handled = h, true, h
		e.mu.Unlock()
	}
	if want == handled {
		return
	}
	e.mu.Lock()
	e.inFlight = true
	e.mu.Unlock()
	err := e.k.a.exports.startWith(ctx, true, func(out exportOutcome) {
		if out != exportAborted {
			e.markHandled(want)
		}
		e.mu.Lock()
		e.inFlight = false
		e.mu.Unlock()
		poke(e.k.exportNow) // the annotation may have changed meanwhile
	})
	if err != nil {
		e.mu.Lock()
		e.inFlight = false
		e.mu.Unlock()
		e.k.log.Debug("export-now not started yet; retrying", "value", want, logError, err)
		return
	}
	e.k.log.Info("export requested by the KVFold annotation", "annotation", v1alpha1.ExportNowAnnotation, "value", want)
}

// readHandled reads the export-now value last handled from the Lease.
func (e *elector) readHandled(ctx context.Context) (string, error) {
	var l coordinationv1.Lease
	key := client.ObjectKey{Namespace: e.k.cfg.Namespace, Name: e.k.cfg.ExportLease}
	if err := e.k.c.Get(ctx, key, &l); err != nil {
		return "", fmt.Errorf("get lease %s: %w", key.Name, err)
	}
	return l.Annotations[v1alpha1.ExportNowHandledAnnotation], nil
}

// markHandled records v as handled, in memory and on the Lease (get and update, retried
// on conflicts with the holder's renewals).
func (e *elector) markHandled(v string) {
	e.mu.Lock()
	e.handled, e.known = v, true
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := client.ObjectKey{Namespace: e.k.cfg.Namespace, Name: e.k.cfg.ExportLease}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var l coordinationv1.Lease
		if err := e.k.c.Get(ctx, key, &l); err != nil {
			return err
		}
		if l.Annotations[v1alpha1.ExportNowHandledAnnotation] == v {
			return nil
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[v1alpha1.ExportNowHandledAnnotation] = v
		return e.k.c.Update(ctx, &l)
	})
	if err != nil {
		e.k.log.Warn("record the handled export-now value on the Lease (a new holder may export for it again)", logError, err)
	}
}

// sleepCtx sleeps d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
