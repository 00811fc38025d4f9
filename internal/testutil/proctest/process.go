package proctest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pollInterval is how often Eventually and WaitAccepting try again.
const pollInterval = 20 * time.Millisecond

// Process is a child process the test started. It is signalled only through its PID, and
// its output (stdout and stderr together) is kept for the test.
type Process struct {
	name   string
	cmd    *exec.Cmd
	out    output
	exited chan struct{}
	err    error // cmd.Wait's result, set before exited closes
}

// Start starts cmd, recording its stdout and stderr; name labels it in messages.
func Start(name string, cmd *exec.Cmd) (*Process, error) { return start(name, cmd, nil) }

// start is Start with onLine called for each complete output line as it arrives.
func start(name string, cmd *exec.Cmd, onLine func(string)) (*Process, error) {
	p := &Process{name: name, cmd: cmd, exited: make(chan struct{})}
	p.out.onLine = onLine
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// Name is the label Start was given.
func (p *Process) Name() string { return p.name }

// Pid is the process's PID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is everything the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// Exited is closed once the process has exited and its output is complete.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is the process's exit status (nil for exit 0); valid once Exited is closed.
func (p *Process) Err() error { return p.err }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to the process and waits for it to exit; after grace it sends SIGKILL.
// It does nothing for a nil or exited process.
func (p *Process) Stop(grace time.Duration) {
	if p == nil || !p.Running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Kill sends SIGKILL to the process and waits for it to exit.
func (p *Process) Kill() {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// WaitAccepting polls until addr accepts TCP connections. It fails when the process exits
// first or within passes.
func (p *Process) WaitAccepting(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if !p.Running() {
			return fmt.Errorf("%s exited at start: %v\n%s", p.name, p.err, Tail(p.Output(), 4000))
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections on %s after %s: %w", p.name, addr, within, err)
		}
		time.Sleep(pollInterval)
	}
}

// output is a process's output, safe for the process's copying goroutine and the test.
type output struct {
	mu      sync.Mutex
	b       bytes.Buffer
	onLine  func(string)
	scanned int // bytes of b already passed to onLine
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	for o.onLine != nil {
		rest := o.b.Bytes()[o.scanned:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		o.onLine(string(rest[:i]))
		o.scanned += i + 1
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// crashMarkers are what the Go runtime prints when a process panics or dies of a fatal
// runtime error; none may appear in any process's output.
var crashMarkers = []string{"panic:", "fatal error:", "SIGSEGV"}

// noCrash fails the test when output shows a panic or a fatal runtime error.
func noCrash(t testing.TB, who, output string) {
	t.Helper()
	for _, m := range crashMarkers {
		if i := strings.Index(output, m); i >= 0 {
			t.Fatalf("%s crashed (%q in its output):\n%s", who, m, Tail(output[i:], 6000))
		}
	}
}

// Tail is the last n bytes of s (all of s when it is shorter).
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Eventually polls f until it returns nil; it fails the test with f's last error when
// within passes first.
func Eventually(t testing.TB, within time.Duration, what string, f func() error) {
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
		time.Sleep(pollInterval)
	}
}

// FreePort returns a TCP port free on 127.0.0.1 now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
