package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/client"
)

// TestWorldConditionsDegradeNeverExit starts the agent before NATS exists, then with NATS
// but without the bucket: it stays up, Degraded with the cause in lastError, and becomes
// Live by itself once the bucket appears.
func TestWorldConditionsDegradeNeverExit(t *testing.T) {
	n := &natsProc{t: t, port: freePort(t), dir: t.TempDir()}
	t.Cleanup(n.stop)
	a := startAgent(t, "--nats-url", n.url(), "--bucket", "late", "--data-dir", t.TempDir(), "--backend", "memory")
	degradedWith := func(what string) {
		t.Helper()
		eventually(t, 10*time.Second, "Degraded: "+what, func() error {
			st, err := a.status()
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
	n.start()
	degradedWith("not found")
	select {
	case <-a.exited:
		t.Fatalf("agent exited on a world condition: %v", a.err)
	default:
	}
	conn := connect(t, n.url())
	b := createBucket(t, conn, "late")
	if _, err := b.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	a.waitCaughtUp(t, b, 20*time.Second)
	e, err := a.client(t).Get(context.Background(), "k")
	if err != nil || string(e.Value) != "v" || e.Stale {
		t.Fatalf("get after recovery: %+v %v", e, err)
	}
}

// TestRefusedCredentialsDegradeWithoutLeaking: wrong credentials keep the agent up and
// Degraded, the reason says so, and the password appears nowhere in status or logs.
func TestRefusedCredentialsDegradeWithoutLeaking(t *testing.T) {
	if natsServerBin == "" {
		t.Skip("needs bin/nats-server (make nats-server) for server-side auth flags")
	}
	n := &natsProc{t: t, port: freePort(t), dir: t.TempDir(), args: []string{"--user", "app", "--pass", "right-pass"}}
	n.start()
	t.Cleanup(n.stop)
	url := fmt.Sprintf("nats://app:hunter2-wrong@127.0.0.1:%d", n.port)
	a := startAgent(t, "--nats-url", url, "--bucket", "b", "--data-dir", t.TempDir(), "--backend", "memory")
	var st client.Status
	eventually(t, 10*time.Second, "Degraded on refused credentials", func() error {
		var err error
		if st, err = a.status(); err != nil {
			return err
		}
		if st.Phase != "Degraded" || !strings.Contains(strings.ToLower(st.LastError), "authorization") && !strings.Contains(st.LastError, "permission") {
			return fmt.Errorf("phase %s lastError %q", st.Phase, st.LastError)
		}
		return nil
	})
	if strings.Contains(st.LastError, "hunter2") || strings.Contains(a.logTail(1<<20), "hunter2") {
		t.Fatalf("password leaked: status %q", st.LastError)
	}
	// SIGTERM while Degraded still drains and exits 0 promptly.
	if code, took := a.terminate(t); code != 0 || took > 5*time.Second {
		t.Fatalf("SIGTERM while Degraded: exit %d after %s", code, took)
	}
}
