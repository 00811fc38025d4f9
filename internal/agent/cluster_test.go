package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/export"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// testBucket creates bucket on a fresh embedded nats-server and puts n keys into it.
func testBucket(t *testing.T, name string, n int) (*natstest.Server, *kv.Bucket) {
	t.Helper()
	srv := natstest.Start(t)
	ctx := context.Background()
	conn, err := kv.Connect(ctx, kv.Options{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	b, err := conn.CreateBucket(ctx, kv.BucketConfig{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	putN(t, b, 0, n)
	return srv, b
}

func putN(t *testing.T, b *kv.Bucket, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := b.Put(context.Background(), fmt.Sprintf("route.r%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *clusterAgent) statusWrites(result string) float64 {
	return testutil.ToFloat64(c.a.metrics.statusWrites.WithLabelValues(result))
}

// TestClusterStatusReportsTheFold: the agent patches its KVFoldNode's status with the
// fold's real figures, writes at most once per interval while the bucket changes, and
// not at all while nothing changes.
func TestClusterStatusReportsTheFold(t *testing.T) {
	srv, b := testBucket(t, "routes", 20)
	f := newKubeFixture(t, srv.URL(), "routes")
	f.createNodeObject(t, "n1")
	user, rc := f.agentUser(t)
	f.grant(t, user, "n1")
	const interval = time.Second
	ag := f.startClusterAgent(t, "n1", rc, func(c *ClusterConfig) { c.StatusInterval = interval })

	waitFor(t, 20*time.Second, "status Live with the bucket's figures", func() (bool, string) {
		n, _ := f.nodeStatus(t, "n1")
		s := n.Status
		ok := s.Phase == v1alpha1.PhaseLive && s.Cursor == 20 && s.Keys == 20 && s.StreamLastSequence == 20 &&
			s.Pending == 0 && s.Pod == "routes-n1" && s.LastError == "" && s.LastUpdateTime != nil && s.LastTransitionTime != nil
		return ok, fmt.Sprintf("%+v", s)
	})

	// A bucket that keeps changing: one write per interval at most.
	before := ag.statusWrites("success")
	start := time.Now()
	for i := 0; time.Since(start) < 4*time.Second; i++ {
		putN(t, b, 20+i, 1)
		time.Sleep(20 * time.Millisecond) // a steady trickle of updates
	}
	window := time.Since(start)
	writes := ag.statusWrites("success") - before
	maxWrites := float64(window/interval) + 1
	if writes < 2 || writes > maxWrites {
		t.Fatalf("%v status writes in %v of constant change with a %v interval; want 2..%v", writes, window.Round(time.Millisecond), interval, maxWrites)
	}
	t.Logf("%v status writes in %v of constant change (interval %v)", writes, window.Round(time.Millisecond), interval)

	// Quiet: once the last change is written, nothing is written any more.
	last, err := b.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var rv string
	waitFor(t, 10*time.Second, "the final cursor written", func() (bool, string) {
		n, _ := f.nodeStatus(t, "n1")
		rv = n.ResourceVersion
		return n.Status.Cursor == int64(last.LastSeq) && n.Status.StreamLastSequence == int64(last.LastSeq), fmt.Sprintf("%+v", n.Status)
	})
	quiet := ag.statusWrites("success")
	deadline := time.Now().Add(3 * interval)
	for time.Now().Before(deadline) {
		n, _ := f.nodeStatus(t, "n1")
		if n.ResourceVersion != rv || ag.statusWrites("success") != quiet {
			t.Fatalf("status written while nothing changed: %+v", n.Status)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	if fails := ag.statusWrites("failure"); fails != 0 {
		t.Fatalf("%v failed status writes with the object and the rights in place", fails)
	}
}

// TestClusterPhaseChangeWrittenAtOnce: with an interval far longer than the test, a
// changed cursor is not written, but every phase change is, at once.
func TestClusterPhaseChangeWrittenAtOnce(t *testing.T) {
	srv, b := testBucket(t, "routes", 5)
	f := newKubeFixture(t, srv.URL(), "routes")
	f.createNodeObject(t, "n1")
	user, rc := f.agentUser(t)
	f.grant(t, user, "n1")
	f.startClusterAgent(t, "n1", rc, func(c *ClusterConfig) { c.StatusInterval = time.Hour })

	waitFor(t, 20*time.Second, "status Live", func() (bool, string) {
		n, _ := f.nodeStatus(t, "n1")
		return n.Status.Phase == v1alpha1.PhaseLive && n.Status.Cursor == 5, fmt.Sprintf("%+v", n.Status)
	})
	putN(t, b, 5, 3)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := f.nodeStatus(t, "n1"); n.Status.Cursor != 5 {
			t.Fatalf("a cursor change was written before the interval passed: %+v", n.Status)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	srv.Shutdown()
	waitFor(t, 20*time.Second, "status Degraded", func() (bool, string) {
		n, _ := f.nodeStatus(t, "n1")
		s := n.Status
		return s.Phase == v1alpha1.PhaseDegraded && s.LastError != "" && s.Cursor == 8, fmt.Sprintf("%+v", s)
	})
}

// TestClusterWaitsForTheController: before the controller has granted the agent its Role
// (403) and created the KVFoldNode (404), the writes fail and are retried while the fold
// keeps running; once both are there the status appears and the KVFold watch works.
func TestClusterWaitsForTheController(t *testing.T) {
	srv, _ := testBucket(t, "routes", 7)
	f := newKubeFixture(t, srv.URL(), "routes")
	user, rc := f.agentUser(t)
	ag := f.startClusterAgent(t, "n1", rc, func(c *ClusterConfig) { c.StatusInterval = time.Second })

	waitFor(t, 20*time.Second, "the fold Live without any API access", func() (bool, string) {
		p := ag.a.tracker.phase()
		return p == PhaseLive, string(p)
	})
	retried := func(what string) {
		t.Helper()
		fails := ag.statusWrites("failure")
		waitFor(t, 10*time.Second, what, func() (bool, string) {
			now := ag.statusWrites("failure")
			return now >= fails+2, fmt.Sprintf("%v failed writes", now)
		})
	}
	// What the agent meets, checked with its own credentials.
	as, err := client.New(rc, client.Options{Scheme: clusterScheme(), Mapper: clusterMapper()})
	if err != nil {
		t.Fatal(err)
	}
	probe := func() error {
		obj := &v1alpha1.KVFoldNode{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: v1alpha1.KVFoldNodeName(f.fold, "n1")}}
		return as.Status().Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(`{"status":{}}`)))
	}
	retried("the forbidden write retried (403: no rights, no object)")
	if err := probe(); !apierrors.IsForbidden(err) {
		t.Fatalf("status patch without rights: %v, want 403", err)
	}
	f.grant(t, user, "n1")
	waitFor(t, 10*time.Second, "the grant in effect", func() (bool, string) {
		err := probe()
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	retried("the write retried (404: rights, but no object yet)")
	if ag.a.tracker.phase() != PhaseLive {
		t.Fatalf("the fold left Live while the API refused the agent: %s", ag.a.tracker.phase())
	}
	f.createNodeObject(t, "n1")
	waitFor(t, 10*time.Second, "status once the object exists", func() (bool, string) {
		n, _ := f.nodeStatus(t, "n1")
		return n.Status.Phase == v1alpha1.PhaseLive && n.Status.Cursor == 7 && n.Status.Keys == 7, fmt.Sprintf("%+v", n.Status)
	})
	// The KVFold watch, forbidden at first, follows the fold now.
	annotate(t, f, "after-grant")
	waitFor(t, 10*time.Second, "the annotation seen", func() (bool, string) {
		w := ag.a.cluster.wanted()
		return w == "after-grant", w
	})
}

func annotate(t *testing.T, f *kubeFixture, value string) {
	t.Helper()
	var fold v1alpha1.KVFold
	if err := f.admin.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: f.fold}, &fold); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(fold.DeepCopy())
	if fold.Annotations == nil {
		fold.Annotations = map[string]string{}
	}
	fold.Annotations[v1alpha1.ExportNowAnnotation] = value
	if err := f.admin.Patch(context.Background(), &fold, patch); err != nil {
		t.Fatal(err)
	}
}

func (f *kubeFixture) leaseState(t *testing.T) (holder, handled string) {
	t.Helper()
	var l coordinationv1.Lease
	if err := f.admin.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: f.lease}, &l); err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	return holder, l.Annotations[v1alpha1.ExportNowHandledAnnotation]
}

// TestClusterExportNowByTheLeaseHolder: two agents, one Lease. The export-now annotation
// makes the holder, and only it, export once; its KVFoldNode shows the export. When the
// holder stops, the other agent takes the Lease over and handles the next request.
func TestClusterExportNowByTheLeaseHolder(t *testing.T) {
	srv, _ := testBucket(t, "routes", 12)
	f := newKubeFixture(t, srv.URL(), "routes")
	dir := t.TempDir()
	f.exportURL = "file://" + dir
	f.createLease(t)
	agents := map[string]*clusterAgent{}
	for _, node := range []string{"n1", "n2"} {
		f.createNodeObject(t, node)
		user, rc := f.agentUser(t)
		f.grant(t, user, node)
		agents[node] = f.startClusterAgent(t, node, rc, func(c *ClusterConfig) { c.StatusInterval = 200 * time.Millisecond })
	}
	var holder string
	waitFor(t, 30*time.Second, "both Live and one holding the Lease", func() (bool, string) {
		n1, _ := f.nodeStatus(t, "n1")
		n2, _ := f.nodeStatus(t, "n2")
		holder, _ = f.leaseState(t)
		return n1.Status.Phase == v1alpha1.PhaseLive && n2.Status.Phase == v1alpha1.PhaseLive && holder != "",
			fmt.Sprintf("n1 %s, n2 %s, holder %q", n1.Status.Phase, n2.Status.Phase, holder)
	})
	holderNode := strings.TrimPrefix(holder, "routes-")
	other := map[string]string{"n1": "n2", "n2": "n1"}[holderNode]
	if other == "" {
		t.Fatalf("Lease holder %q is not one of the agents' Pods", holder)
	}
	if _, ok := agents[other].a.cluster.elector.leader(); ok {
		t.Fatalf("%s thinks it holds the Lease too", other)
	}

	loc, err := export.OpenLocation(context.Background(), f.exportURL)
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	exports := func() int {
		ls, err := loc.List(context.Background(), "routes")
		if err != nil {
			t.Fatal(err)
		}
		return len(ls.Exports)
	}

	annotate(t, f, "1")
	waitFor(t, 20*time.Second, "the holder's export in its status", func() (bool, string) {
		n, _ := f.nodeStatus(t, holderNode)
		e := n.Status.LastExport
		return e != nil && e.Cursor == 12 && e.Keys == 12 && e.Bytes > 0 && e.Node == holderNode &&
				strings.HasPrefix(e.URL, f.exportURL+"/routes/") && n.Status.LastExportAttempt != nil && n.Status.LastExportError == "",
			fmt.Sprintf("%+v", n.Status)
	})
	_, handled := f.leaseState(t)
	if handled != "1" {
		t.Fatalf("handled export-now value on the Lease: %q, want 1", handled)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if got := exports(); got != 1 {
			t.Fatalf("%d exports for one export-now request, want 1", got)
		}
		if n, _ := f.nodeStatus(t, other); n.Status.LastExport != nil || n.Status.LastExportAttempt != nil {
			t.Fatalf("the agent without the Lease exported: %+v", n.Status)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}

	// Handover: the holder stops (and releases the Lease); the other takes it over and
	// handles the next request, but not the one already handled.
	agents[holderNode].stop()
	waitFor(t, 20*time.Second, "the other agent holding the Lease", func() (bool, string) {
		h, _ := f.leaseState(t)
		_, leading := agents[other].a.cluster.elector.leader()
		return h == "routes-"+other && leading, h
	})
	deadline = time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if got := exports(); got != 1 {
			t.Fatalf("the new holder exported again for a handled request: %d exports", got)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	annotate(t, f, "2")
	waitFor(t, 20*time.Second, "the new holder's export", func() (bool, string) {
		n, _ := f.nodeStatus(t, other)
		e := n.Status.LastExport
		return e != nil && e.Node == other && e.Cursor == 12, fmt.Sprintf("%+v", n.Status)
	})
	if got := exports(); got != 2 {
		t.Fatalf("%d exports after two requests, want 2", got)
	}
	waitFor(t, 10*time.Second, "handled 2 on the Lease", func() (bool, string) {
		_, h := f.leaseState(t)
		return h == "2", h
	})
}

// TestClusterScheduledExportsByTheHolderOnly: on the schedule only the Lease holder
// exports, and in a cluster also while the fold has not moved (the controller judges
// ExportHealthy by the age of the last export).
func TestClusterScheduledExportsByTheHolderOnly(t *testing.T) {
	srv, _ := testBucket(t, "routes", 4)
	f := newKubeFixture(t, srv.URL(), "routes")
	dir := t.TempDir()
	f.exportURL, f.schedule = "file://"+dir, "@every 1s"
	f.createLease(t)
	for _, node := range []string{"n1", "n2"} {
		f.createNodeObject(t, node)
		user, rc := f.agentUser(t)
		f.grant(t, user, node)
		f.startClusterAgent(t, node, rc, func(c *ClusterConfig) { c.StatusInterval = 200 * time.Millisecond })
	}
	loc, err := export.OpenLocation(context.Background(), f.exportURL)
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	waitFor(t, 30*time.Second, "three scheduled exports of the quiet fold", func() (bool, string) {
		ls, err := loc.List(context.Background(), "routes")
		if err != nil {
			t.Fatal(err)
		}
		return len(ls.Exports) >= 3, fmt.Sprintf("%d exports", len(ls.Exports))
	})
	holder, _ := f.leaseState(t)
	waitFor(t, 10*time.Second, "the exports in the holder's status, none in the other's", func() (bool, string) {
		var seen []string
		ok := true
		for _, node := range []string{"n1", "n2"} {
			n, _ := f.nodeStatus(t, node)
			exported := n.Status.LastExport != nil
			if exported != ("routes-"+node == holder) {
				ok = false
			}
			seen = append(seen, fmt.Sprintf("%s exported=%v", node, exported))
		}
		return ok, fmt.Sprintf("holder %s: %v", holder, seen)
	})
}
