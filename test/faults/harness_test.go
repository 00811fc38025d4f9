package faults_test

import (
	"bufio"
	"bytes"
	"cmp"
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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/client"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

var (
	agentBin      string // built in TestMain
	natsServerBin string // bin/nats-server (hack/tool.sh nats-server)
)

// crashMarkers are what the Go runtime prints when a process panics or dies of a fatal
// runtime error; none may appear in any process's output.
var crashMarkers = []string{"panic:", "fatal error:", "SIGSEGV"}

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	// The suite mounts filesystems, kills processes and takes minutes: it runs from
	// `make test-faults` (part of `make test`), not from every `go test ./...`.
	if os.Getenv("SLIPSTREAM_FAULTS") != "1" {
		fmt.Println("fault suite not run: set SLIPSTREAM_FAULTS=1 (make test-faults runs it)")
		return 0
	}
	p, err := filepath.Abs("../../bin/nats-server")
	if err == nil {
		if fi, serr := os.Stat(p); serr != nil || fi.Mode()&0o111 == 0 {
			err = fmt.Errorf("%s is missing or not executable", p)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "the fault suite needs a real nats-server process: %v; run `make nats-server` (hack/tool.sh nats-server)\n", err)
		return 1
	}
	natsServerBin = p
	tmp, err := os.MkdirTemp("", "slipstream-faults-")
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
	return m.Run()
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

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", within, what, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// syncBuffer is a bytes.Buffer safe for a process's output goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// noCrash fails the test when output shows a panic or a fatal runtime error.
func noCrash(t testing.TB, who, output string) {
	t.Helper()
	for _, m := range crashMarkers {
		if i := strings.Index(output, m); i >= 0 {
			t.Fatalf("%s crashed (%q in its output):\n%s", who, m, tail(output[i:], 6000))
		}
	}
}

// natsProc is a nats-server process with a JetStream store dir on a fixed port, restarted
// gracefully or killed -9 by the test.
type natsProc struct {
	t      testing.TB
	port   int
	dir    string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	starts int
}

func startNATS(t testing.TB) *natsProc {
	t.Helper()
	n := &natsProc{t: t, port: freePort(t), dir: t.TempDir()}
	n.start()
	t.Cleanup(func() {
		n.stop()
	})
	return n
}

func (n *natsProc) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsProc) start() {
	n.t.Helper()
	n.cmd = exec.Command(natsServerBin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.dir)
	n.out = &syncBuffer{}
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start nats-server: %v", err)
	}
	n.starts++
	n.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(n.cmd, n.exited)
	eventually(n.t, 30*time.Second, "nats-server accepting connections", func() error {
		select {
		case <-n.exited:
			n.t.Fatalf("nats-server exited at start:\n%s", tail(n.out.String(), 4000))
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// stop terminates the server gracefully (SIGTERM; SIGKILL after 20s) and checks its output.
func (n *natsProc) stop() { n.end(syscall.SIGTERM) }

// kill9 kills the server with SIGKILL.
func (n *natsProc) kill9() { n.end(syscall.SIGKILL) }

func (n *natsProc) end(sig syscall.Signal) {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
	noCrash(n.t, "nats-server", n.out.String())
	n.cmd = nil
}

// agentProc is a running agent binary. Its stderr is kept in full and checked for crash
// markers when it ends.
type agentProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	addr   string
	stderr syncBuffer
	exited chan struct{}
	err    error
	done   bool
}

var listenRE = regexp.MustCompile(`read API listening"? addr=(\S+)`)

// launchAgent starts `agent run` with args plus --listen 127.0.0.1:0; it does not wait.
func launchAgent(t testing.TB, args ...string) (*agentProc, <-chan string) {
	t.Helper()
	a := &agentProc{t: t, exited: make(chan struct{})}
	level := cmp.Or(os.Getenv("FAULT_LOG_LEVEL"), "info") // debug for a closer look at a failure
	a.cmd = exec.Command(agentBin, append([]string{"run", "--listen", "127.0.0.1:0", "--log-level", level}, args...)...)
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
			_, _ = a.stderr.Write([]byte(line + "\n"))
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case addrCh <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(&a.stderr, pr)
		a.err = a.cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		a.kill9()
		if t.Failed() {
			t.Logf("agent stderr (tail):\n%s", tail(a.stderr.String(), 4000))
		}
	})
	return a, addrCh
}

// startAgent starts the agent and waits until its read API answers.
func startAgent(t testing.TB, args ...string) *agentProc {
	t.Helper()
	a, addrCh := launchAgent(t, args...)
	select {
	case a.addr = <-addrCh:
	case <-a.exited:
		t.Fatalf("agent exited at start: %v\n%s", a.err, tail(a.stderr.String(), 4000))
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not start listening\n%s", tail(a.stderr.String(), 4000))
	}
	return a
}

func (a *agentProc) base() string { return "http://" + a.addr }

// kill9 kills the agent with SIGKILL, waits for it and checks its output.
func (a *agentProc) kill9() {
	select {
	case <-a.exited:
	default:
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
	a.checkOutput()
}

func (a *agentProc) checkOutput() {
	if a.done {
		return
	}
	a.done = true
	noCrash(a.t, "agent", a.stderr.String())
}

// terminate sends SIGTERM and requires a clean exit 0.
func (a *agentProc) terminate(t testing.TB) {
	t.Helper()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not exit within 30s of SIGTERM\n%s", tail(a.stderr.String(), 4000))
	}
	a.checkOutput()
	if a.err != nil {
		t.Fatalf("agent exit after SIGTERM: %v\n%s", a.err, tail(a.stderr.String(), 4000))
	}
}

// status fetches /v1/status.
func (a *agentProc) status() (client.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := client.New(a.base())
	if err != nil {
		return client.Status{}, err
	}
	return c.Status(ctx)
}

func (a *agentProc) mustStatus(t testing.TB) client.Status {
	t.Helper()
	st, err := a.status()
	if err != nil {
		t.Fatalf("agent status: %v", err)
	}
	return st
}

// waitCaughtUp waits until the agent is Live with its cursor at the bucket's last sequence.
func (a *agentProc) waitCaughtUp(t testing.TB, b *kv.Bucket, within time.Duration) client.Status {
	t.Helper()
	var st client.Status
	eventually(t, within, "agent Live at the bucket's last sequence", func() error {
		select {
		case <-a.exited:
			t.Fatalf("agent exited: %v\n%s", a.err, tail(a.stderr.String(), 4000))
		default:
		}
		bs, err := b.Status(context.Background())
		if err != nil {
			return err
		}
		if st, err = a.status(); err != nil {
			return err
		}
		if st.Phase != "Live" || st.Cursor < bs.LastSeq {
			return fmt.Errorf("phase %s cursor %d, stream last %d (lastError %q)", st.Phase, st.Cursor, bs.LastSeq, st.LastError)
		}
		return nil
	})
	return st
}

// runAgent runs the agent binary to completion (offline commands) and returns its exit code.
func runAgent(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBin, args...)
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
	noCrash(t, "agent "+args[0], e.String()+o.String())
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
	b, err := c.CreateBucket(context.Background(), kv.BucketConfig{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entry is one live key of a fold or a bucket.
type entry struct {
	Key      string `json:"key"`
	Value    []byte `json:"value"`
	Revision uint64 `json:"revision"`
}

// bucketState reads the bucket's live keys directly from NATS, ordered by key.
func bucketState(t testing.TB, b *kv.Bucket) []entry {
	t.Helper()
	var out []entry
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for e, err := range b.Scan(ctx, "") {
		if err != nil {
			t.Fatalf("scan bucket: %v", err)
		}
		out = append(out, entry{Key: e.Key, Value: e.Value, Revision: e.Revision})
	}
	sortEntries(out)
	return out
}

// dumpFold reads a stopped agent's fold with `agent dump`.
func dumpFold(t testing.TB, dir string) []entry {
	t.Helper()
	code, out, errOut := runAgent(t, "dump", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("agent dump: exit %d: %s", code, errOut)
	}
	var es []entry
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e entry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("dump output: %v", err)
		}
		es = append(es, e)
	}
	return es
}

// apiFold reads a running agent's fold through the read API (GET /v1/keys).
func apiFold(t testing.TB, a *agentProc) []entry {
	t.Helper()
	c, err := client.New(a.base())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var es []entry
	for e, err := range c.Range(ctx, "") {
		if err != nil {
			t.Fatalf("list fold: %v", err)
		}
		es = append(es, entry{Key: e.Key, Value: e.Value, Revision: e.Revision})
	}
	return es
}

// sameEntries reports how two key-ordered states differ: the number of keys that differ
// and the first few of them.
func sameEntries(bucket, fold []entry) error {
	var diffs []string
	n := 0
	note := func(format string, args ...any) {
		n++
		if len(diffs) < 8 {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	i, j := 0, 0
	for i < len(bucket) || j < len(fold) {
		switch {
		case j >= len(fold) || i < len(bucket) && bucket[i].Key < fold[j].Key:
			note("fold lacks %q (bucket rev %d)", bucket[i].Key, bucket[i].Revision)
			i++
		case i >= len(bucket) || fold[j].Key < bucket[i].Key:
			note("fold has extra %q (rev %d)", fold[j].Key, fold[j].Revision)
			j++
		default:
			if bucket[i].Revision != fold[j].Revision || !bytes.Equal(bucket[i].Value, fold[j].Value) {
				note("%q: bucket rev %d, fold rev %d", bucket[i].Key, bucket[i].Revision, fold[j].Revision)
			}
			i++
			j++
		}
	}
	if n > 0 {
		return fmt.Errorf("%d keys differ: %s", n, strings.Join(diffs, "; "))
	}
	return nil
}

// compareFold checks fold == bucket key by key (keys, values, revisions) and counts the
// writer's acknowledged updates the fold does not reflect.
func compareFold(t testing.TB, b *kv.Bucket, fold []entry, w *writer) (lost int) {
	t.Helper()
	bucket := bucketState(t, b)
	if err := sameEntries(bucket, fold); err != nil {
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
