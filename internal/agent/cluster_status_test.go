package agent

import (
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// TestStatusPatchClearsZeroFields: the merge patch names every status field, null for a
// zero value, so a cleared error or a drained backlog is cleared on the server as well.
func TestStatusPatchClearsZeroFields(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	b, err := statusPatch(&v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseLive, Cursor: 42, LastUpdateTime: &now})
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Status map[string]any `json:"status"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Status) != 16 || len(statusFields) != 16 {
		t.Fatalf("patch names %d fields, the type has %d; want all 16: %s", len(p.Status), len(statusFields), b)
	}
	for _, f := range []string{"lastError", "lastExport", "lastExportError", "seededFrom"} {
		if v, ok := p.Status[f]; !ok || v != nil {
			t.Errorf("%s: %v (present %v), want null", f, v, ok)
		}
	}
	// A drained backlog is written as 0, not removed: kubectl's Pending column shows 0.
	for _, f := range []string{"pending", "lagSeconds"} {
		if v, ok := p.Status[f]; !ok || v != float64(0) {
			t.Errorf("%s: %v (present %v), want 0", f, v, ok)
		}
	}
	if p.Status["phase"] != "Live" || p.Status["cursor"] != float64(42) || p.Status["lastUpdateTime"] != "2026-01-02T03:04:05Z" {
		t.Errorf("set fields: %s", b)
	}
}

// TestStatusReporterDue: the write rules, step by step.
func TestStatusReporterDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &statusReporter{interval: 10 * time.Second}
	live := v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseLive, Cursor: 1}
	steps := []struct {
		name  string
		st    v1alpha1.KVFoldNodeStatus
		at    time.Duration
		fail  time.Duration // the write fails and is retried after this
		write bool
	}{
		{"nothing written yet", live, 0, 0, true},
		{"unchanged", live, 1 * time.Second, 0, false},
		{"only the update time differs", withUpdate(live, t0.Add(time.Minute)), 2 * time.Second, 0, false},
		{"cursor moved inside the interval", withCursor(live, 2), 5 * time.Second, 0, false},
		{"cursor moved, interval passed", withCursor(live, 2), 10 * time.Second, 0, true},
		{"phase changed inside the interval", withPhase(withCursor(live, 2), v1alpha1.PhaseDegraded), 11 * time.Second, 3 * time.Second, true},
		{"phase change, retry not due", withPhase(withCursor(live, 2), v1alpha1.PhaseDegraded), 12 * time.Second, 0, false},
		{"phase change, retry due", withPhase(withCursor(live, 2), v1alpha1.PhaseDegraded), 14 * time.Second, 0, true},
		{"back to Live at once", withCursor(live, 3), 15 * time.Second, 0, true},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		if got := r.due(s.st, now); got != s.write {
			t.Fatalf("%s: due %v, want %v", s.name, got, s.write)
		}
		if !s.write {
			continue
		}
		if s.fail > 0 {
			r.retryAt = now.Add(s.fail)
			continue
		}
		r.written(s.st, now)
	}
}

func withUpdate(s v1alpha1.KVFoldNodeStatus, at time.Time) v1alpha1.KVFoldNodeStatus {
	mt := metav1.NewTime(at)
	s.LastUpdateTime = &mt
	return s
}

func withCursor(s v1alpha1.KVFoldNodeStatus, c int64) v1alpha1.KVFoldNodeStatus {
	s.Cursor = c
	return s
}

func withPhase(s v1alpha1.KVFoldNodeStatus, p v1alpha1.NodePhase) v1alpha1.KVFoldNodeStatus {
	s.Phase = p
	return s
}
