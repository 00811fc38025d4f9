package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

const (
	// statusTick is how often (at most) the reporter compares the fold's status with the
	// last one written (a local comparison; it writes only by the rules of reportStatus).
	statusTick = time.Second
	// maxStatusError bounds lastError and lastExportError in the status object.
	maxStatusError = 1024
	// statusFlushTimeout bounds the last write at shutdown.
	statusFlushTimeout = 3 * time.Second
)

// statusFields are the JSON names of every KVFoldNodeStatus field: the agent is the only
// writer of the status, and its merge patch names every field (null for a zero value, so
// a cleared error or a drained backlog is cleared on the server too).
var statusFields = func() []string {
	t := reflect.TypeFor[v1alpha1.KVFoldNodeStatus]()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}()

// statusPatch is the merge patch that sets the status to st.
func statusPatch(st *v1alpha1.KVFoldNodeStatus) ([]byte, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, f := range statusFields {
		if _, ok := m[f]; !ok {
			m[f] = nil
		}
	}
	return json.Marshal(map[string]any{"status": m})
}

// toInt64 converts a counter for the API (int64), saturating.
func toInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// nodeStatus is the fold's status as the KVFoldNode shows it (without lastUpdateTime).
// Times are truncated to seconds (what the API keeps), the lag to milliseconds.
func (k *cluster) nodeStatus() v1alpha1.KVFoldNodeStatus {
	s := k.a.tracker.snapshot()
	ns := v1alpha1.KVFoldNodeStatus{
		Phase:              v1alpha1.NodePhase(s.Phase),
		Pod:                k.cfg.Pod,
		Cursor:             toInt64(s.Cursor),
		StreamLastSequence: toInt64(s.StreamLastSequence),
		Pending:            toInt64(s.Pending),
		LagSeconds:         math.Round(s.LagSeconds*1000) / 1000,
		Keys:               toInt64(s.Keys),
		CursorExpired:      toInt64(s.CursorExpired),
		Resyncs:            toInt64(s.Resyncs),
		SeededFrom:         s.SeededFrom,
		LastTransitionTime: ptrTime(s.PhaseSince),
		LastExportError:    truncate(s.LastExportError, maxStatusError),
	}
	if s.Phase != PhaseLive { // "empty when healthy"; /v1/status keeps the last one
		ns.LastError = truncate(s.LastError, maxStatusError)
	}
	if e := s.LastExport; e != nil {
		ns.LastExport = &v1alpha1.ExportRecord{
			Time: metav1.NewTime(e.Time).Rfc3339Copy(), Cursor: toInt64(e.Cursor), Keys: toInt64(e.Keys), Bytes: e.Bytes,
			URL: strings.TrimSuffix(k.exportTo, "/") + "/" + e.Object, Node: k.cfg.Node,
		}
	}
	if s.LastExportAttempt != nil {
		ns.LastExportAttempt = ptrTime(*s.LastExportAttempt)
	}
	return ns
}

func ptrTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t).Rfc3339Copy()
	return &mt
}

// sameStatus reports whether a and b differ in nothing but lastUpdateTime.
func sameStatus(a, b v1alpha1.KVFoldNodeStatus) bool {
	a.LastUpdateTime, b.LastUpdateTime = nil, nil
	return equality.Semantic.DeepEqual(a, b)
}

// statusReporter decides when the status is written. The rules (issue 6: <= 0.1 writes/s
// per node in steady state):
//   - nothing but timestamps changed: no write (a quiet fold costs nothing);
//   - the phase changed (or nothing was written yet by this process): write at once;
//   - anything else changed: write once the interval has passed since the last write;
//   - after a failed write, retry with backoff (404/403 until the controller created the
//     object and granted access; the fold keeps running meanwhile).
type statusReporter struct {
	interval  time.Duration
	last      *v1alpha1.KVFoldNodeStatus // last written by this process
	lastWrite time.Time
	retryAt   time.Time
}

// due returns whether st should be written now.
func (r *statusReporter) due(st v1alpha1.KVFoldNodeStatus, now time.Time) bool {
	if r.last != nil && sameStatus(st, *r.last) {
		return false
	}
	if now.Before(r.retryAt) {
		return false
	}
	if r.last == nil || st.Phase != r.last.Phase {
		return true
	}
	return now.Sub(r.lastWrite) >= r.interval
}

func (r *statusReporter) written(st v1alpha1.KVFoldNodeStatus, now time.Time) {
	r.last, r.lastWrite, r.retryAt = &st, now, time.Time{}
}

// reportStatus keeps the KVFoldNode's status current until ctx ends, then writes the final
// state once more (if it changed) with a fresh context.
func (k *cluster) reportStatus(ctx context.Context) {
	r := &statusReporter{interval: k.cfg.StatusInterval}
	bo := k.newRetry()
	t := time.NewTicker(min(statusTick, r.interval/4))
	defer t.Stop()
	var lastProblem string
	for {
		select {
		case <-ctx.Done():
			k.flushStatus(r)
			return
		case <-k.statusNow:
		case <-t.C:
		}
		now := time.Now()
		st := k.nodeStatus()
		if !r.due(st, now) {
			continue
		}
		err := k.writeStatus(ctx, &st, now)
		if ctx.Err() != nil {
			continue // stopping: the flush writes
		}
		if err != nil {
			r.retryAt = now.Add(bo.next())
			if p := apiProblem(err); p != lastProblem {
				lastProblem = p
				k.log.Warn("KVFoldNode status "+p+"; retrying", "kvfoldnode", k.nodeName, logError, err)
			} else {
				k.log.Debug("KVFoldNode status write failed; retrying", "kvfoldnode", k.nodeName, logError, err)
			}
			continue
		}
		if lastProblem != "" || r.last == nil {
			k.log.Info("KVFoldNode status written", "kvfoldnode", k.nodeName, logPhase, string(st.Phase))
		}
		lastProblem = ""
		bo.reset()
		r.written(st, now)
	}
}

// writeStatus merge-patches the status subresource of the agent's KVFoldNode.
func (k *cluster) writeStatus(ctx context.Context, st *v1alpha1.KVFoldNodeStatus, now time.Time) error {
	st.LastUpdateTime = ptrTime(now)
	body, err := statusPatch(st)
	if err != nil {
		return fmt.Errorf("encode status patch: %w", err)
	}
	obj := &v1alpha1.KVFoldNode{ObjectMeta: metav1.ObjectMeta{Name: k.nodeName, Namespace: k.cfg.Namespace}}
	err = k.c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, body))
	k.a.metrics.statusWrites.WithLabelValues(statusWriteResult(err)).Inc()
	if err != nil {
		return fmt.Errorf("patch kvfoldnode %s status: %w", k.nodeName, err)
	}
	return nil
}

// statusWriteResult is the result label of slipstream_status_writes_total.
func statusWriteResult(err error) string {
	if err != nil {
		return "failure"
	}
	return "success"
}

// flushStatus writes the final status at shutdown when it changed since the last write.
func (k *cluster) flushStatus(r *statusReporter) {
	st := k.nodeStatus()
	if r.last != nil && sameStatus(st, *r.last) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusFlushTimeout)
	defer cancel()
	if err := k.writeStatus(ctx, &st, time.Now()); err != nil {
		k.log.Debug("final KVFoldNode status write failed", logError, err)
	}
}
