package controller

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// observedAnnotation on a KVFoldNode: what the controller last saw of the node's counters,
// so events fire once per transition, also across manager restarts.
const observedAnnotation = "slipstream.dev/observed"

// maxListed bounds the nodes named in one condition message.
const maxListed = 5

type observed struct {
	Pod           string `json:"pod,omitempty"`
	CursorExpired int64  `json:"cursorExpired,omitempty"`
	Resyncs       int64  `json:"resyncs,omitempty"`
	SeededFrom    string `json:"seededFrom,omitempty"`
	ExportAttempt string `json:"exportAttempt,omitempty"`
}

// aggregate is the fold across its node objects.
type aggregate struct {
	streamLast, minCursor, maxPending int64
	maxLag                            float64
	top                               []v1alpha1.NodeLag
	lastExport                        *v1alpha1.ExportRecord
	failedExport                      *v1alpha1.KVFoldNode // newest failed attempt, if newer than lastExport
	degraded, notLive, recovering     []string
	recovered                         []string
}

func aggregateNodes(nodes []v1alpha1.KVFoldNode) aggregate {
	var a aggregate
	first := true
	var lastFailAt time.Time
	for i := range nodes {
		n := &nodes[i]
		s := n.Status
		if s.Phase == "" {
			a.notLive = append(a.notLive, n.Spec.NodeName+" (no status yet)")
			continue
		}
		a.streamLast = max(a.streamLast, s.StreamLastSequence)
		if first || s.Cursor < a.minCursor {
			a.minCursor = s.Cursor
		}
		first = false
		a.maxPending = max(a.maxPending, s.Pending)
		a.maxLag = max(a.maxLag, s.LagSeconds)
		if s.Phase != v1alpha1.PhaseLive {
			a.notLive = append(a.notLive, fmt.Sprintf("%s (%s)", n.Spec.NodeName, s.Phase))
		}
		if s.Phase == v1alpha1.PhaseDegraded {
			a.degraded = append(a.degraded, nodeProblem(n))
		}
		if s.CursorExpired > 0 {
			if s.Phase == v1alpha1.PhaseLive {
				a.recovered = append(a.recovered, n.Spec.NodeName)
			} else {
				a.recovering = append(a.recovering, fmt.Sprintf("%s (%s)", n.Spec.NodeName, s.Phase))
			}
		}
		if s.Pending > 0 || s.LagSeconds > 0 || s.Phase != v1alpha1.PhaseLive {
			a.top = append(a.top, v1alpha1.NodeLag{Node: n.Spec.NodeName, Phase: s.Phase, Cursor: s.Cursor, Pending: s.Pending, LagSeconds: s.LagSeconds})
		}
		if e := s.LastExport; e != nil && (a.lastExport == nil || e.Time.After(a.lastExport.Time.Time)) {
			rec := *e.DeepCopy()
			if rec.Node == "" {
				rec.Node = n.Spec.NodeName
			}
			a.lastExport = &rec
		}
		if s.LastExportError != "" && s.LastExportAttempt != nil && s.LastExportAttempt.After(lastFailAt) {
			lastFailAt = s.LastExportAttempt.Time
			a.failedExport = n
		}
	}
	if a.failedExport != nil && a.lastExport != nil && !lastFailAt.After(a.lastExport.Time.Time) {
		a.failedExport = nil
	}
	slices.SortFunc(a.top, func(x, y v1alpha1.NodeLag) int {
		return cmp.Or(cmp.Compare(y.LagSeconds, x.LagSeconds), cmp.Compare(y.Pending, x.Pending), strings.Compare(x.Node, y.Node))
	})
	if len(a.top) > 5 {
		a.top = a.top[:5]
	}
	slices.Sort(a.notLive)
	slices.Sort(a.degraded)
	slices.Sort(a.recovering)
	slices.Sort(a.recovered)
	return a
}

func nodeProblem(n *v1alpha1.KVFoldNode) string {
	if n.Status.LastError == "" {
		return n.Spec.NodeName
	}
	return n.Spec.NodeName + ": " + n.Status.LastError
}

// list joins up to maxListed items and says how many more there are.
func list(items []string) string {
	if len(items) <= maxListed {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:maxListed], "; "), len(items)-maxListed)
}

// reconcileStatus aggregates the node objects into KVFold.status, sets the conditions and
// emits events on transitions. Status is written by a merge patch, only when it changed.
func (r *KVFoldReconciler) reconcileStatus(ctx context.Context, fold *v1alpha1.KVFold, nodes []v1alpha1.KVFoldNode, problems []string) (ctrl.Result, error) {
	var ds appsv1.DaemonSet
	dsFound := true
	if err := r.Get(ctx, client.ObjectKey{Namespace: fold.Namespace, Name: fold.Name}, &ds); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("get daemonset: %w", err)
		}
		dsFound = false
	}
	now := r.now()
	a := aggregateNodes(nodes)
	old := fold.DeepCopy()
	st := &fold.Status
	st.ObservedGeneration = fold.Generation
	st.Nodes = v1alpha1.NodeCounts{}
	if dsFound {
		st.Nodes = v1alpha1.NodeCounts{Desired: ds.Status.DesiredNumberScheduled, Ready: ds.Status.NumberReady, Updated: ds.Status.UpdatedNumberScheduled}
	}
	st.NodeSummary = fmt.Sprintf("%d/%d", st.Nodes.Ready, st.Nodes.Desired)
	st.StreamLastSequence, st.MinCursor, st.MaxPending, st.MaxLagSeconds = a.streamLast, a.minCursor, a.maxPending, a.maxLag
	st.TopLaggards = a.top
	if a.lastExport != nil && (st.LastExport == nil || a.lastExport.Time.After(st.LastExport.Time.Time)) {
		st.LastExport = a.lastExport
	}

	set := func(t string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: fold.Generation,
		})
	}
	rolledOut := dsFound && ds.Status.ObservedGeneration >= ds.Generation
	// Ready
	switch {
	case !dsFound && len(problems) > 0:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, "no agents run while the spec is invalid (see the Degraded condition)")
	case !dsFound || !rolledOut:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDaemonSetNotReady, "the agent DaemonSet has not been observed by its controller yet")
	case st.Nodes.Desired == 0:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNoNodes, "no node matches spec.placement")
	case st.Nodes.Ready == st.Nodes.Desired && st.Nodes.Updated == st.Nodes.Desired:
		set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAllNodesLive, fmt.Sprintf("%d/%d nodes Live", st.Nodes.Ready, st.Nodes.Desired))
	default:
		msg := fmt.Sprintf("%d/%d nodes ready, %d/%d updated", st.Nodes.Ready, st.Nodes.Desired, st.Nodes.Updated, st.Nodes.Desired)
		if len(a.notLive) > 0 {
			msg += "; not Live: " + list(a.notLive)
		}
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNodesNotReady, msg)
	}
	// Progressing
	catchingUp := false
	for _, n := range nodes {
		switch n.Status.Phase {
		case v1alpha1.PhaseOpening, v1alpha1.PhaseSeeding, v1alpha1.PhaseCatchingUp:
			catchingUp = true
		}
	}
	switch {
	case !dsFound || !rolledOut || st.Nodes.Updated < st.Nodes.Desired:
		set(v1alpha1.ConditionProgressing, metav1.ConditionTrue, v1alpha1.ReasonRollingOut, fmt.Sprintf("rolling out the current spec: %d/%d nodes updated", st.Nodes.Updated, st.Nodes.Desired))
	case catchingUp:
		set(v1alpha1.ConditionProgressing, metav1.ConditionTrue, v1alpha1.ReasonCatchingUp, "agents catching up: "+list(a.notLive))
	default:
		set(v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonStable, "every agent runs the current spec")
	}
	// Degraded
	switch {
	case len(problems) > 0:
		set(v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonInvalidSpec, strings.Join(problems, "; "))
	case len(a.degraded) > 0:
		set(v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonNodesDegraded, "Degraded nodes: "+list(a.degraded))
	default:
		set(v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected, "no agent is Degraded and the spec is valid")
	}
	// CursorExpired
	if len(a.recovering) > 0 {
		set(v1alpha1.ConditionCursorExpired, metav1.ConditionTrue, v1alpha1.ReasonRecovering, "cursor expired, recovering: "+list(a.recovering))
	} else {
		msg := "no agent is recovering from an expired cursor"
		if len(a.recovered) > 0 {
			msg += "; recovered since their start: " + list(a.recovered)
		}
		set(v1alpha1.ConditionCursorExpired, metav1.ConditionFalse, v1alpha1.ReasonCursorsCurrent, msg)
	}
	// ExportHealthy
	var requeue time.Duration
	if fold.Spec.Export == nil {
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionExportHealthy)
	} else {
		c, after := exportCondition(fold, st.LastExport, a.failedExport, now)
		set(v1alpha1.ConditionExportHealthy, c.Status, c.Reason, c.Message)
		requeue = after
	}

	r.emitTransitionEvents(old, fold)
	if err := r.observeNodes(ctx, fold, nodes); err != nil {
		return ctrl.Result{}, err
	}
	if !equality.Semantic.DeepEqual(old.Status, fold.Status) {
		if err := r.Status().Patch(ctx, fold, client.MergeFrom(old)); err != nil {
			return ctrl.Result{}, fmt.Errorf("patch status: %w", err)
		}
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// exportGrace is how late an export may be before ExportHealthy turns False.
const exportGrace = 5 * time.Minute

// exportCondition judges the exports against the schedule. An export is overdue when the
// second scheduled time after the last export (or the KVFold's creation) plus a grace has
// passed: exports are made by one elected agent and may slip by one slot. It returns when
// to look again, since only the clock (and NATS) moves an overdue verdict.
func exportCondition(fold *v1alpha1.KVFold, last *v1alpha1.ExportRecord, failed *v1alpha1.KVFoldNode, now time.Time) (metav1.Condition, time.Duration) {
	c := metav1.Condition{}
	if failed != nil {
		c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonExportFailed
		c.Message = fmt.Sprintf("the last export attempt (node %s, %s) failed: %s", failed.Spec.NodeName,
			failed.Status.LastExportAttempt.UTC().Format(time.RFC3339), failed.Status.LastExportError)
		return c, 0
	}
	since := fold.CreationTimestamp.Time
	if last != nil {
		since = last.Time.Time
	}
	sched, err := cron.ParseStandard(fold.Spec.Export.Schedule)
	if err != nil {
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, v1alpha1.ReasonInvalidSpec, "spec.export.schedule is not a cron schedule"
		return c, 0
	}
	deadline := sched.Next(sched.Next(since)).Add(exportGrace)
	switch {
	case now.After(deadline):
		c.Status, c.Reason = metav1.ConditionFalse, v1alpha1.ReasonExportOverdue
		c.Message = fmt.Sprintf("no export since %s; the schedule %q expected one by %s", since.UTC().Format(time.RFC3339), fold.Spec.Export.Schedule, deadline.UTC().Format(time.RFC3339))
		return c, 0
	case last == nil:
		c.Status, c.Reason = metav1.ConditionUnknown, v1alpha1.ReasonExportPending
		c.Message = fmt.Sprintf("no export yet; the schedule %q expects one by %s", fold.Spec.Export.Schedule, deadline.UTC().Format(time.RFC3339))
	default:
		c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonExportSucceeded
		c.Message = fmt.Sprintf("last export %s: cursor %d, %d keys, %d bytes", last.Time.UTC().Format(time.RFC3339), last.Cursor, last.Keys, last.Bytes)
	}
	return c, deadline.Sub(now) + time.Second
}

// emitTransitionEvents emits the fold-level events: Degraded when the condition turns True
// (or its reason changes), ExportSucceeded when the last export advances.
func (r *KVFoldReconciler) emitTransitionEvents(old, fold *v1alpha1.KVFold) {
	was := meta.FindStatusCondition(old.Status.Conditions, v1alpha1.ConditionDegraded)
	is := meta.FindStatusCondition(fold.Status.Conditions, v1alpha1.ConditionDegraded)
	if is != nil && is.Status == metav1.ConditionTrue && (was == nil || was.Status != metav1.ConditionTrue || was.Reason != is.Reason) {
		r.event(fold, corev1.EventTypeWarning, v1alpha1.EventDegraded, "%s: %s", is.Reason, is.Message)
	}
	if e := fold.Status.LastExport; e != nil && (old.Status.LastExport == nil || e.Time.After(old.Status.LastExport.Time.Time)) {
		r.event(fold, corev1.EventTypeNormal, v1alpha1.EventExportSucceeded, "node %s exported cursor %d (%d keys, %d bytes) to %s", e.Node, e.Cursor, e.Keys, e.Bytes, e.URL)
	}
}

// observeNodes emits the per-node events (CursorExpired, ResyncStarted, SeededFromExport,
// ExportFailed) for what changed since the node's observed annotation, then records it.
func (r *KVFoldReconciler) observeNodes(ctx context.Context, fold *v1alpha1.KVFold, nodes []v1alpha1.KVFoldNode) error {
	for i := range nodes {
		n := &nodes[i]
		s := n.Status
		if s.Phase == "" {
			continue
		}
		var prev observed
		if raw := n.Annotations[observedAnnotation]; raw != "" {
			_ = json.Unmarshal([]byte(raw), &prev) // a mangled annotation counts as nothing seen
		}
		if prev.Pod != s.Pod { // a new agent process: its counters started from zero
			prev.CursorExpired, prev.Resyncs = 0, 0
		}
		cur := observed{Pod: s.Pod, CursorExpired: s.CursorExpired, Resyncs: s.Resyncs, SeededFrom: s.SeededFrom}
		if s.LastExportAttempt != nil {
			cur.ExportAttempt = s.LastExportAttempt.UTC().Format(time.RFC3339Nano)
		}
		node := n.Spec.NodeName
		if cur.CursorExpired > prev.CursorExpired {
			r.event(fold, corev1.EventTypeWarning, v1alpha1.EventCursorExpired, "node %s: cursor %d expired (NATS no longer holds every update after it); recovering", node, s.Cursor)
		}
		if cur.Resyncs > prev.Resyncs {
			r.event(fold, corev1.EventTypeWarning, v1alpha1.EventResyncStarted, "node %s: full resync from NATS (%d since the agent started)", node, s.Resyncs)
		}
		if cur.SeededFrom != "" && cur.SeededFrom != prev.SeededFrom {
			r.event(fold, corev1.EventTypeNormal, v1alpha1.EventSeededFromExport, "node %s: seeded from export %s", node, s.SeededFrom)
		}
		if s.LastExportError != "" && cur.ExportAttempt != "" && cur.ExportAttempt != prev.ExportAttempt {
			r.event(fold, corev1.EventTypeWarning, v1alpha1.EventExportFailed, "node %s: export failed: %s", node, s.LastExportError)
		}
		if cur == prev && n.Annotations[observedAnnotation] != "" {
			continue
		}
		if cur == (observed{Pod: cur.Pod}) && n.Annotations[observedAnnotation] == "" {
			continue // nothing worth remembering: a healthy fleet costs no writes here
		}
		b, _ := json.Marshal(cur)
		patch := client.MergeFrom(n.DeepCopy())
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		n.Annotations[observedAnnotation] = string(b)
		if err := r.Patch(ctx, n, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("record observed state of %s: %w", n.Name, err)
		}
	}
	return nil
}

// event records an event on the fold. The messages carry node names, counters, errors as
// the agents report them (without credentials) and export URLs (which the CRD forbids to
// hold credentials), never Secret data.
func (r *KVFoldReconciler) event(fold *v1alpha1.KVFold, kind, reason, note string, args ...any) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(fold, nil, kind, reason, reason, note, args...)
}
