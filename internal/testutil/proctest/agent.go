package proctest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/client"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// terminateTimeout bounds how long the agent may take to exit after SIGTERM.
const terminateTimeout = 30 * time.Second

var listenRE = regexp.MustCompile(`read API listening"? addr=(\S+)`)

// Agent is a running `agent run`. Its output is checked for crash markers when it ends.
type Agent struct {
	*Process
	t         testing.TB
	h         *Harness
	addr      string
	listening chan string // the read API's address, once logged
	checked   bool
}

// LaunchAgent starts `agent run` with args plus --listen 127.0.0.1:0 and the harness's
// --log-level; it does not wait (WaitListening). The agent is killed when the test ends,
// and its output's tail is logged when the test failed.
func (h *Harness) LaunchAgent(t testing.TB, args ...string) *Agent {
	t.Helper()
	a := &Agent{t: t, h: h, listening: make(chan string, 1)}
	cmd := exec.Command(h.AgentBin, append([]string{"run", "--listen", "127.0.0.1:0", "--log-level", h.LogLevel}, args...)...)
	p, err := start("agent", cmd, func(line string) {
		if m := listenRE.FindStringSubmatch(line); m != nil {
			select {
			case a.listening <- m[1]:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Process = p
	t.Cleanup(func() {
		a.Kill()
		if t.Failed() {
			t.Logf("agent stderr (tail):\n%s", Tail(a.Output(), 4000))
		}
	})
	return a
}

// StartAgent starts the agent (LaunchAgent) and waits until its read API listens.
func (h *Harness) StartAgent(t testing.TB, args ...string) *Agent {
	t.Helper()
	a := h.LaunchAgent(t, args...)
	if err := a.WaitListening(); err != nil {
		t.Fatal(err)
	}
	return a
}

// WaitListening waits, up to the harness's ReadyTimeout, until the agent logs its read
// API's address.
func (a *Agent) WaitListening() error {
	select {
	case a.addr = <-a.listening:
		return nil
	case <-a.Exited():
		return fmt.Errorf("agent exited at start: %v\n%s", a.Err(), Tail(a.Output(), 4000))
	case <-time.After(a.h.ReadyTimeout):
		return fmt.Errorf("agent did not start listening\n%s", Tail(a.Output(), 4000))
	}
}

// Addr is the read API's host:port.
func (a *Agent) Addr() string { return a.addr }

// BaseURL is the read API's base URL.
func (a *Agent) BaseURL() string { return "http://" + a.addr }

// Client is a read API client that retries briefly.
func (a *Agent) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(a.BaseURL(), client.WithRetry(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Kill kills the agent with SIGKILL, waits for it and checks its output.
func (a *Agent) Kill() {
	a.Process.Kill()
	a.checkOutput()
}

func (a *Agent) checkOutput() {
	if a.checked {
		return
	}
	a.checked = true
	noCrash(a.t, "agent", a.Output())
}

// Terminate sends SIGTERM, requires a clean exit 0 within 30s and returns how long the
// exit took.
func (a *Agent) Terminate(t testing.TB) time.Duration {
	t.Helper()
	start := time.Now()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.Exited():
	case <-time.After(terminateTimeout):
		t.Fatalf("agent did not exit within %s of SIGTERM\n%s", terminateTimeout, Tail(a.Output(), 4000))
	}
	took := time.Since(start)
	a.checkOutput()
	if a.Err() != nil {
		t.Fatalf("agent exit after SIGTERM: %v\n%s", a.Err(), Tail(a.Output(), 4000))
	}
	return took
}

// Status fetches /v1/status.
func (a *Agent) Status() (client.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := client.New(a.BaseURL())
	if err != nil {
		return client.Status{}, err
	}
	return c.Status(ctx)
}

// MustStatus fetches /v1/status or fails the test.
func (a *Agent) MustStatus(t testing.TB) client.Status {
	t.Helper()
	st, err := a.Status()
	if err != nil {
		t.Fatalf("agent status: %v", err)
	}
	return st
}

// WaitCaughtUp waits until the agent is Live with its cursor at the bucket's last sequence.
// It fails at once when the agent exits.
func (a *Agent) WaitCaughtUp(t testing.TB, b *kv.Bucket, within time.Duration) client.Status {
	t.Helper()
	var st client.Status
	Eventually(t, within, "agent Live at the bucket's last sequence", func() error {
		if !a.Running() {
			t.Fatalf("agent exited: %v\n%s", a.Err(), Tail(a.Output(), 4000))
		}
		bs, err := b.Status(context.Background())
		if err != nil {
			return err
		}
		if st, err = a.Status(); err != nil {
			return err
		}
		if st.Phase != "Live" || st.Cursor < bs.LastSeq {
			return fmt.Errorf("phase %s cursor %d, stream last %d (lastError %q)", st.Phase, st.Cursor, bs.LastSeq, st.LastError)
		}
		return nil
	})
	return st
}

// Metric returns the value of the /metrics sample named exactly name (with its labels, as
// exposed), or an error when it is absent.
func (a *Agent) Metric(name string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.BaseURL()+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not exposed", name)
}

// MustMetric is Metric, failing the test on an error.
func (a *Agent) MustMetric(t testing.TB, name string) float64 {
	t.Helper()
	v, err := a.Metric(name)
	if err != nil {
		t.Fatalf("metric %s: %v", name, err)
	}
	return v
}

// RunAgent runs the agent binary to completion (offline commands, bad flags) with extra
// environment env, checks its output for crash markers and returns its exit code.
func (h *Harness) RunAgent(t testing.TB, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.RunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.AgentBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run agent %v: %v", args, err)
	}
	noCrash(t, "agent "+strings.Join(args, " "), e.String()+o.String())
	return code, o.String(), e.String()
}
