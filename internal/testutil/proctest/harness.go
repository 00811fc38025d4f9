package proctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Harness is one suite's binaries and patience: the same processes, started the same way,
// with the time each suite allows them.
type Harness struct {
	// AgentBin is the agent binary; Main builds it.
	AgentBin string
	// NATSBin is the nats-server binary (NATSServerBin). Empty runs an embedded server in a
	// re-exec of the test binary instead, which must call ServeEmbeddedNATS in TestMain.
	NATSBin string
	// LogLevel is the agent's --log-level.
	LogLevel string
	// ReadyTimeout bounds how long a started nats-server or agent may take to accept
	// connections.
	ReadyTimeout time.Duration
	// StopGrace is how long nats-server has to exit after SIGTERM before it is killed.
	StopGrace time.Duration
	// RunTimeout bounds an offline agent command (RunAgent).
	RunTimeout time.Duration
}

// Main builds cmd/agent into a temporary directory as AgentBin, runs the tests and removes
// the directory; it returns the exit code for os.Exit. The go command's output goes to
// stderr.
func (h *Harness) Main(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "slipstream-proctest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	h.AgentBin = filepath.Join(tmp, "agent")
	build := exec.Command("go", "build", "-o", h.AgentBin, "github.com/slipstream-dev/slipstream/cmd/agent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build agent:", err)
		return 1
	}
	return m.Run()
}

// NATSServerBin returns the module's bin/nats-server (built by hack/tool.sh nats-server),
// or an error when it is missing or not executable.
func NATSServerBin() (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	p := filepath.Join(filepath.Dir(string(bytes.TrimSpace(gomod))), "bin", "nats-server")
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is missing or not executable", p)
	}
	return p, nil
}
