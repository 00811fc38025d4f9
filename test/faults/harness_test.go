package faults_test

import (
	"cmp"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// harness runs the agent binary built by harness.Main and bin/nats-server, with more time
// than test/agent allows: the processes here run under kill loops, full disks and
// partitions on a loaded machine.
var harness = proctest.Harness{
	LogLevel:     cmp.Or(os.Getenv("FAULT_LOG_LEVEL"), "info"), // debug for a closer look at a failure
	ReadyTimeout: 30 * time.Second,
	StopGrace:    20 * time.Second,
	RunTimeout:   60 * time.Second,
}

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	// The suite mounts filesystems, kills processes and takes minutes: it runs from
	// `make test-faults` (part of `make test`), not from every `go test ./...`.
	if os.Getenv("SLIPSTREAM_FAULTS") != "1" {
		fmt.Println("fault suite not run: set SLIPSTREAM_FAULTS=1 (make test-faults runs it)")
		return 0
	}
	p, err := proctest.NATSServerBin()
	if err != nil {
		fmt.Fprintf(os.Stderr, "the fault suite needs a real nats-server process: %v; run `make nats-server` (hack/tool.sh nats-server)\n", err)
		return 1
	}
	harness.NATSBin = p
	return harness.Main(m)
}

// cycles is FAULT_CYCLES (default def): how many kill cycles a scenario runs. `make test`
// keeps the default small enough for a bounded run; raise it for longer soaks.
func cycles(t testing.TB, def int) int {
	t.Helper()
	s := os.Getenv("FAULT_CYCLES")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("FAULT_CYCLES=%q: want a positive integer", s)
	}
	return n
}

// report prints one scenario's counts in a fixed form (`FAULTS scenario k=v ...`) so
// docs/reliability.md can be refreshed from a run's output.
func report(t testing.TB, scenario string, kv ...any) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "FAULTS %s", scenario)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	t.Log(b.String())
}

// compareFold checks fold == bucket key by key (keys, values, revisions) and counts the
// writer's acknowledged updates the fold does not reflect.
func compareFold(t testing.TB, b *kv.Bucket, fold []proctest.Entry, w *writer) (lost int) {
	t.Helper()
	bucket := proctest.BucketState(t, b, "")
	if err := proctest.Diff(bucket, fold); err != nil {
		t.Fatalf("fold != bucket (%d keys in the bucket, %d in the fold): %v", len(bucket), len(fold), err)
	}
	if w != nil {
		lost = w.lost(fold, bucket)
		if lost != 0 {
			t.Fatalf("%d acknowledged updates are not reflected in the fold", lost)
		}
	}
	return lost
}
