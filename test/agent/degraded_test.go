package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/client"
)

// TestWorldConditionsDegradeNeverExit starts the agent before NATS exists, then with NATS
// but without the bucket: it stays up, Degraded with the cause in lastError, and becomes
// Live by itself once the bucket appears.
func TestWorldConditionsDegradeNeverExit(t *testing.T) {
	n := harness.NewNATS(t)
	a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "late", "--data-dir", t.TempDir(), "--backend", "memory")
	degradedWith := func(what string) {
		t.Helper()
		proctest.Eventually(t, 10*time.Second, "Degraded: "+what, func() error {
			st, err := a.Status()
			if err != nil {
				return err
			}
			if st.Phase != "Degraded" || !strings.Contains(st.LastError, what) {
				return fmt.Errorf("phase %s lastError %q", st.Phase, st.LastError)
			}
			return nil
		})
	}
	degradedWith("connect")
	n.Start()
	degradedWith("not found")
	if !a.Running() {
		t.Fatalf("agent exited on a world condition: %v", a.Err())
	}
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "late")
	if _, err := b.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	a.WaitCaughtUp(t, b, 20*time.Second)
	e, err := a.Client(t).Get(context.Background(), "k")
	if err != nil || string(e.Value) != "v" || e.Stale {
		t.Fatalf("get after recovery: %+v %v", e, err)
	}
}

// TestRefusedCredentialsDegradeWithoutLeaking: wrong credentials keep the agent up and
// Degraded, the reason says so, and the password appears nowhere in status or logs.
func TestRefusedCredentialsDegradeWithoutLeaking(t *testing.T) {
	if harness.NATSBin == "" {
		t.Skip("needs bin/nats-server (make nats-server) for server-side auth flags")
	}
	n := harness.NewNATS(t, "--user", "app", "--pass", "right-pass")
	n.Start()
	url := fmt.Sprintf("nats://app:hunter2-wrong@127.0.0.1:%d", n.Port())
	a := harness.StartAgent(t, "--nats-url", url, "--bucket", "b", "--data-dir", t.TempDir(), "--backend", "memory")
	var st client.Status
	proctest.Eventually(t, 10*time.Second, "Degraded on refused credentials", func() error {
		var err error
		if st, err = a.Status(); err != nil {
			return err
		}
		if st.Phase != "Degraded" || !strings.Contains(strings.ToLower(st.LastError), "authorization") && !strings.Contains(st.LastError, "permission") {
			return fmt.Errorf("phase %s lastError %q", st.Phase, st.LastError)
		}
		return nil
	})
	if strings.Contains(st.LastError, "hunter2") || strings.Contains(a.Output(), "hunter2") {
		t.Fatalf("password leaked: status %q", st.LastError)
	}
	// SIGTERM while Degraded still drains and exits 0 promptly.
	if took := a.Terminate(t); took > 5*time.Second {
		t.Fatalf("SIGTERM while Degraded: exit after %s", took)
	}
}
