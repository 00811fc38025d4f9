package controller

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
)

// BenchmarkAggregate1000Nodes: the in-memory part of a status pass for a fold on 1,000
// nodes (issue 6 asks for a whole pass under 1 s).
func BenchmarkAggregate1000Nodes(b *testing.B) {
	now := metav1.NewTime(time.Now())
	nodes := make([]v1alpha1.KVFoldNode, 1000)
	for i := range nodes {
		phase := v1alpha1.PhaseLive
		if i%97 == 0 {
			phase = v1alpha1.PhaseCatchingUp
		}
		nodes[i] = nodeWith(fmt.Sprintf("node-%04d", i), v1alpha1.KVFoldNodeStatus{
			Phase: phase, Cursor: int64(100000 - i%50), StreamLastSequence: 100000, Pending: int64(i % 50),
			LagSeconds: float64(i%50) / 100, Keys: 10000, LastExport: &v1alpha1.ExportRecord{Time: now, Cursor: 99000},
		})
	}
	b.ReportAllocs()
	for b.Loop() {
		a := aggregateNodes(nodes)
		if len(a.top) != 5 {
			b.Fatal("top laggards")
		}
	}
}
