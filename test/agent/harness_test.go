package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/slipstream-dev/slipstream/pkg/client"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

var (
	agentBin      string // built in TestMain
	natsServerBin string // bin/nats-server, or "" to re-exec this binary as the server
)

const helperEnv = "SLIPSTREAM_TEST_NATS_HELPER" // "port storeDir": run an embedded server

func TestMain(m *testing.M) {
	if v := os.Getenv(helperEnv); v != "" {
		runEmbeddedNATS(v)
		return
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "slipstream-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	agentBin = filepath.Join(tmp, "agent")
	build := exec.Command("go", "build", "-o", agentBin, "github.com/slipstream-dev/slipstream/cmd/agent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build agent:", err)
		return 1
	}
	// SLIPSTREAM_TEST_EMBEDDED_NATS=1 forces the embedded fallback (to test it).
	if p, err := filepath.Abs("../../bin/nats-server"); err == nil && os.Getenv("SLIPSTREAM_TEST_EMBEDDED_NATS") == "" {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			natsServerBin = p
		}
	}
	return m.Run()
}

// runEmbeddedNATS is the helper process: a JetStream server on a fixed port until killed.
func runEmbeddedNATS(arg string) {
	var port int
	var dir string
	if _, err := fmt.Sscanf(arg, "%d %s", &port, &dir); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: false})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	s.ConfigureLogger()
	s.Start()
	s.WaitForShutdown()
}

// natsProc is a nats-server process on a fixed port that can be killed and restarted.
type natsProc struct {
	t    testing.TB
	port int
	dir  string
	args []string // extra nats-server flags (binary only)
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startNATS(t testing.TB) *natsProc {
	t.Helper()
	n := &natsProc{t: t, port: freePort(t), dir: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsProc) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsProc) start() {
	n.t.Helper()
	if natsServerBin != "" {
		n.cmd = exec.Command(natsServerBin, append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.dir}, n.args...)...)
	} else {
		self, _ := os.Executable()
		n.cmd = exec.Command(self)
		n.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s", helperEnv, n.port, n.dir))
	}
	n.log = &bytes.Buffer{}
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start nats-server: %v", err)
	}
	eventually(n.t, 20*time.Second, "nats-server accepting connections", func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// stop terminates the server (SIGTERM, then SIGKILL) and waits for it.
func (n *natsProc) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
	}
	n.cmd = nil
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", within, what, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// agentProc is a running agent binary.
type agentProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{}
	err    error
}

var listenRE = regexp.MustCompile(`read API listening"? addr=(\S+)`)

// startAgent runs `agent run` with args plus --listen 127.0.0.1:0 and waits until its API
// answers.
func startAgent(t testing.TB, args ...string) *agentProc {
	t.Helper()
	a := &agentProc{t: t, exited: make(chan struct{})}
	a.cmd = exec.Command(agentBin, append([]string{"run", "--listen", "127.0.0.1:0", "--log-level", "debug"}, args...)...)
	pr, err := a.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			a.mu.Lock()
			a.stderr.WriteString(line + "\n")
			a.mu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case addrCh <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
		a.err = a.cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		a.kill()
		if t.Failed() {
			t.Logf("agent stderr (tail):\n%s", a.logTail(4000))
		}
	})
	select {
	case a.addr = <-addrCh:
	case <-a.exited:
		t.Fatalf("agent exited at start: %v\n%s", a.err, a.logTail(4000))
	case <-time.After(20 * time.Second):
		t.Fatalf("agent did not start listening\n%s", a.logTail(4000))
	}
	return a
}

func (a *agentProc) logTail(n int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stderr.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

func (a *agentProc) base() string { return "http://" + a.addr }

func (a *agentProc) client(t testing.TB) *client.Client {
	c, err := client.New(a.base(), client.WithRetry(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kill9 kills the agent with SIGKILL and waits for it.
func (a *agentProc) kill() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Kill()
	<-a.exited
}

// terminate sends SIGTERM and returns the exit code and how long the exit took.
func (a *agentProc) terminate(t testing.TB) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not exit within 30s of SIGTERM\n%s", a.logTail(4000))
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(a.err, &ee) {
		code = ee.ExitCode()
	}
	return code, time.Since(start)
}

// status fetches /v1/status.
func (a *agentProc) status() (client.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, _ := client.New(a.base())
	return c.Status(ctx)
}

// waitCaughtUp waits until the agent is Live with its cursor at the bucket's last sequence.
func (a *agentProc) waitCaughtUp(t testing.TB, b *kv.Bucket, within time.Duration) client.Status {
	t.Helper()
	var st client.Status
	eventually(t, within, "agent Live at the bucket's last sequence", func() error {
		bs, err := b.Status(context.Background())
		if err != nil {
			return err
		}
		st, err = a.status()
		if err != nil {
			return err
		}
		if st.Phase != "Live" || st.Cursor < bs.LastSeq {
			return fmt.Errorf("phase %s cursor %d, stream last %d (lastError %q)", st.Phase, st.Cursor, bs.LastSeq, st.LastError)
		}
		return nil
	})
	return st
}

// runAgent runs the agent binary to completion (offline commands, bad flags).
func runAgent(t testing.TB, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBin, args...)
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
	return code, o.String(), e.String()
}

// connect opens a kv connection that survives server restarts.
func connect(t testing.TB, url string) *kv.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := kv.Connect(ctx, kv.Options{URLs: []string{url}, ReconnectWait: 20 * time.Millisecond, MaxReconnectWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func createBucket(t testing.TB, c *kv.Conn, name string) *kv.Bucket {
	t.Helper()
	return createBucketWith(t, c, kv.BucketConfig{Name: name})
}

func createBucketWith(t testing.TB, c *kv.Conn, cfg kv.BucketConfig) *kv.Bucket {
	t.Helper()
	b, err := c.CreateBucket(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type dumpLine struct {
	Key      string `json:"key"`
	Value    []byte `json:"value"`
	Revision uint64 `json:"revision"`
}

// bucketState returns the bucket's live keys under prefix as dump lines, ordered by key.
func bucketState(t testing.TB, b *kv.Bucket, prefix string) []dumpLine {
	t.Helper()
	var out []dumpLine
	for e, err := range b.Scan(context.Background(), prefix) {
		if err != nil {
			t.Fatalf("scan bucket: %v", err)
		}
		if e.Op != kv.OpPut {
			continue
		}
		out = append(out, dumpLine{Key: e.Key, Value: e.Value, Revision: e.Revision})
	}
	sortLines(out)
	return out
}

// dumpFold runs `agent dump` on dir.
func dumpFold(t testing.TB, dir string) []dumpLine {
	t.Helper()
	code, out, errOut := runAgent(t, nil, "dump", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("agent dump: exit %d: %s", code, errOut)
	}
	var lines []dumpLine
	dec := json.NewDecoder(bytes.NewReader([]byte(out)))
	for dec.More() {
		var l dumpLine
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("dump output: %v", err)
		}
		lines = append(lines, l)
	}
	return lines
}

// sameLines reports the first difference between two sorted states.
func sameLines(want, got []dumpLine) error {
	for i := 0; i < max(len(want), len(got)); i++ {
		switch {
		case i >= len(got):
			return fmt.Errorf("fold lacks %q (rev %d) and %d more", want[i].Key, want[i].Revision, len(want)-i-1)
		case i >= len(want):
			return fmt.Errorf("fold has extra %q (rev %d) and %d more", got[i].Key, got[i].Revision, len(got)-i-1)
		case want[i].Key != got[i].Key || want[i].Revision != got[i].Revision || !bytes.Equal(want[i].Value, got[i].Value):
			return fmt.Errorf("line %d: bucket %q rev %d, fold %q rev %d", i, want[i].Key, want[i].Revision, got[i].Key, got[i].Revision)
		}
	}
	return nil
}
