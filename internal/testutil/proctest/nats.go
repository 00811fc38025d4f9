package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// helperEnv, set to "port storeDir", makes a test binary an embedded nats-server
// (ServeEmbeddedNATS).
const helperEnv = "SLIPSTREAM_TEST_NATS_HELPER"

// NATSCommand is the command of a JetStream nats-server on 127.0.0.1:port storing its data
// in dir, with extra flags args. An empty bin re-executes the test binary as an embedded
// server (ServeEmbeddedNATS), which takes no extra flags.
func NATSCommand(bin string, port int, dir string, args ...string) *exec.Cmd {
	if bin == "" {
		self, _ := os.Executable()
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s", helperEnv, port, dir))
		return cmd
	}
	return exec.Command(bin, append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir}, args...)...)
}

// ServeEmbeddedNATS makes this process the embedded server NATSCommand asked for, when it
// did: it serves JetStream until it is signalled, then exits. Otherwise it returns at once.
// A suite whose Harness may run without a nats-server binary calls it first in TestMain.
func ServeEmbeddedNATS() {
	v := os.Getenv(helperEnv)
	if v == "" {
		return
	}
	var port int
	var dir string
	if _, err := fmt.Sscanf(v, "%d %s", &port, &dir); err != nil {
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
	os.Exit(0)
}

// NATS is a nats-server process with a JetStream store directory on a fixed port, so the
// test can stop or kill it and start it again with its data.
type NATS struct {
	t    testing.TB
	h    *Harness
	port int
	dir  string
	args []string
	p    *Process
}

// NewNATS prepares a server with extra nats-server flags args on a free port and a
// temporary store directory, without starting it. It is stopped when the test ends.
func (h *Harness) NewNATS(t testing.TB, args ...string) *NATS {
	t.Helper()
	n := &NATS{t: t, h: h, port: FreePort(t), dir: t.TempDir(), args: args}
	t.Cleanup(n.Stop)
	return n
}

// StartNATS starts a server (NewNATS, then Start).
func (h *Harness) StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := h.NewNATS(t)
	n.Start()
	return n
}

// URL is the server's client URL.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// Port is the server's client port.
func (n *NATS) Port() int { return n.port }

// Start starts the server and waits until it accepts connections.
func (n *NATS) Start() {
	n.t.Helper()
	if n.h.NATSBin == "" && len(n.args) > 0 {
		n.t.Fatalf("nats-server flags %v need the nats-server binary", n.args)
	}
	p, err := Start("nats-server", NATSCommand(n.h.NATSBin, n.port, n.dir, n.args...))
	if err != nil {
		n.t.Fatal(err)
	}
	n.p = p
	if err := p.WaitAccepting(fmt.Sprintf("127.0.0.1:%d", n.port), n.h.ReadyTimeout); err != nil {
		n.t.Fatal(err)
	}
}

// Stop terminates the server (SIGTERM; SIGKILL after the harness's StopGrace) and checks its
// output. It does nothing when the server is not running.
func (n *NATS) Stop() {
	if n.p != nil {
		n.p.Stop(n.h.StopGrace)
		n.ended()
	}
}

// Kill kills the server with SIGKILL and checks its output.
func (n *NATS) Kill() {
	if n.p != nil {
		n.p.Kill()
		n.ended()
	}
}

func (n *NATS) ended() {
	out := n.p.Output()
	n.p = nil
	noCrash(n.t, "nats-server", out)
}
