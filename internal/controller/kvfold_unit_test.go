package controller

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// Plain tests of the pure parts; the envtest suite covers them end to end.

func nodeWith(name string, s v1alpha1.KVFoldNodeStatus) v1alpha1.KVFoldNode {
	return v1alpha1.KVFoldNode{Spec: v1alpha1.KVFoldNodeSpec{FoldName: "f", NodeName: name}, Status: s}
}

func TestAggregateNodes(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	var nodes []v1alpha1.KVFoldNode
	for i := range 8 {
		nodes = append(nodes, nodeWith("n"+string(rune('a'+i)), v1alpha1.KVFoldNodeStatus{
			Phase: v1alpha1.PhaseCatchingUp, Cursor: int64(100 + i), Pending: int64(10 - i), LagSeconds: float64(i), StreamLastSequence: 200,
		}))
	}
	nodes = append(nodes,
		nodeWith("fresh", v1alpha1.KVFoldNodeStatus{}),
		nodeWith("exporter", v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseLive, Cursor: 200, StreamLastSequence: 210,
			LastExport: &v1alpha1.ExportRecord{Time: t1, Cursor: 190}, LastExportAttempt: &t0, LastExportError: "old failure"}),
		nodeWith("broken", v1alpha1.KVFoldNodeStatus{Phase: v1alpha1.PhaseDegraded, Cursor: 150, CursorExpired: 2, LastError: "store: checksum mismatch"}),
	)
	a := aggregateNodes(nodes)
	if a.minCursor != 100 || a.maxPending != 10 || a.maxLag != 7 || a.streamLast != 210 {
		t.Fatalf("min cursor %d, max pending %d, max lag %v, stream last %d", a.minCursor, a.maxPending, a.maxLag, a.streamLast)
	}
	if len(a.top) != 5 || a.top[0].Node != "nh" || a.top[4].Node != "nd" {
		t.Fatalf("top laggards %+v", a.top)
	}
	if a.lastExport == nil || a.lastExport.Node != "exporter" || a.lastExport.Cursor != 190 {
		t.Fatalf("last export %+v", a.lastExport)
	}
	if a.failedExport != nil {
		t.Fatalf("a failure older than the last export counts: %+v", a.failedExport.Spec)
	}
	if !slices.Equal(a.degraded, []string{"broken: store: checksum mismatch"}) || !slices.Equal(a.recovering, []string{"broken (Degraded)"}) {
		t.Fatalf("degraded %q recovering %q", a.degraded, a.recovering)
	}
	if !slices.Contains(a.notLive, "fresh (no status yet)") {
		t.Fatalf("not live %q", a.notLive)
	}
}

func TestExportCondition(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fold := &v1alpha1.KVFold{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)},
		Spec: v1alpha1.KVFoldSpec{Export: &v1alpha1.ExportSpec{Schedule: "0 * * * *"}}}
	last := &v1alpha1.ExportRecord{Time: metav1.NewTime(created.Add(2 * time.Hour)), Cursor: 5}
	attempt := metav1.NewTime(created.Add(3 * time.Hour))
	failed := &v1alpha1.KVFoldNode{Spec: v1alpha1.KVFoldNodeSpec{NodeName: "n1"},
		Status: v1alpha1.KVFoldNodeStatus{LastExportAttempt: &attempt, LastExportError: "AccessDenied"}}
	for _, tc := range []struct {
		name   string
		last   *v1alpha1.ExportRecord
		failed *v1alpha1.KVFoldNode
		now    time.Time
		status metav1.ConditionStatus
		reason string
		requeu bool
	}{
		{"pending", nil, nil, created.Add(time.Hour), metav1.ConditionUnknown, v1alpha1.ReasonExportPending, true},
		{"never exported", nil, nil, created.Add(3 * time.Hour), metav1.ConditionFalse, v1alpha1.ReasonExportOverdue, false},
		{"fresh", last, nil, created.Add(2*time.Hour + time.Minute), metav1.ConditionTrue, v1alpha1.ReasonExportSucceeded, true},
		{"one slot late is fine", last, nil, created.Add(3*time.Hour + 30*time.Minute), metav1.ConditionTrue, v1alpha1.ReasonExportSucceeded, true},
		{"two slots late", last, nil, created.Add(4*time.Hour + 6*time.Minute), metav1.ConditionFalse, v1alpha1.ReasonExportOverdue, false},
		{"failed", last, failed, created.Add(3 * time.Hour), metav1.ConditionFalse, v1alpha1.ReasonExportFailed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, after := exportCondition(fold, tc.last, tc.failed, tc.now)
			if c.Status != tc.status || c.Reason != tc.reason {
				t.Fatalf("got %s/%s (%s), want %s/%s", c.Status, c.Reason, c.Message, tc.status, tc.reason)
			}
			if (after > 0) != tc.requeu {
				t.Fatalf("requeue after %v, want requeue %v", after, tc.requeu)
			}
		})
	}
}

func TestAgentRulesNeverGrantEveryName(t *testing.T) {
	fold := &v1alpha1.KVFold{ObjectMeta: metav1.ObjectMeta{Name: "f"}}
	for _, r := range agentRules(fold, nil) {
		named := slices.Contains(r.Resources, "kvfolds") || slices.Contains(r.Resources, "secrets") ||
			slices.Contains(r.Resources, "leases") || slices.ContainsFunc(r.Resources, func(s string) bool { return strings.HasPrefix(s, "kvfoldnodes") })
		if named && len(r.ResourceNames) == 0 {
			t.Errorf("rule %+v has no resourceNames: it would grant every object", r)
		}
	}
}

func TestAgentArgsMatchTheAgentFlags(t *testing.T) {
	fold := &v1alpha1.KVFold{ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "ns"}, Spec: v1alpha1.KVFoldSpec{
		NATS:   v1alpha1.NATSSpec{URLs: []string{"nats://a:4222", "tls://b:4222"}, CredentialsSecretRef: &v1alpha1.SecretKeyReference{Name: "c", Key: "edge.creds"}},
		Bucket: "b", Scope: &v1alpha1.ScopeSpec{Prefixes: []string{"route."}},
		Batch: v1alpha1.BatchSpec{Window: &metav1.Duration{Duration: 5 * time.Millisecond}},
	}}
	got := strings.Join(agentArgs(fold), " ")
	want := "run --nats-url=nats://a:4222,tls://b:4222 --bucket=b --prefix=route. --backend=pebble --data-dir=/var/lib/slipstream/fold --listen=0.0.0.0:7070 --log-format=json --batch-window=5ms --creds-file=/etc/slipstream/nats/edge.creds"
	if got != want {
		t.Fatalf("args\n got %s\nwant %s", got, want)
	}
	if p := foldHostPath(fold); p != "/var/lib/slipstream/ns/f" {
		t.Fatalf("host path %s", p)
	}
	// Exports: URL, schedule and retention as given, or their API defaults.
	fold.Spec.Export = &v1alpha1.ExportSpec{URL: "s3://folds/f?endpoint=http://minio:9000", Schedule: "@every 10m", Retain: ptr.To[int32](7)}
	got = strings.Join(agentArgs(fold), " ")
	if !strings.HasSuffix(got, " --export-url=s3://folds/f?endpoint=http://minio:9000 --export-schedule=@every 10m --export-retain=7") {
		t.Fatalf("export args: %s", got)
	}
	// Pebble tuning reaches the agent's flags, in bytes.
	fold.Spec.Backend.Pebble = &v1alpha1.PebbleSpec{Sync: ptr.To(false), CacheSize: ptr.To(resource.MustParse("128Mi"))}
	got = strings.Join(agentArgs(fold), " ")
	if !strings.Contains(got, " --log-format=json --pebble-sync=false --pebble-cache-size=134217728 ") {
		t.Fatalf("pebble args: %s", got)
	}
	fold.Spec.Backend.Pebble = nil
	fold.Spec.Export = &v1alpha1.ExportSpec{URL: "file:///exports"}
	got = strings.Join(agentArgs(fold), " ")
	if !strings.HasSuffix(got, " --export-url=file:///exports --export-schedule=*/15 * * * * --export-retain=5") {
		t.Fatalf("export args with defaults: %s", got)
	}
}
