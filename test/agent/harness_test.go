package agent_test

import (
	"os"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
)

// harness runs the agent binary built by harness.Main and bin/nats-server, or, without
// that binary, an embedded server in a re-exec of this test binary.
var harness = proctest.Harness{LogLevel: "debug", ReadyTimeout: 20 * time.Second, StopGrace: 10 * time.Second, RunTimeout: 30 * time.Second}

func TestMain(m *testing.M) {
	proctest.ServeEmbeddedNATS()
	// SLIPSTREAM_TEST_EMBEDDED_NATS=1 forces the embedded fallback (to test it).
	if p, err := proctest.NATSServerBin(); err == nil && os.Getenv("SLIPSTREAM_TEST_EMBEDDED_NATS") == "" {
		harness.NATSBin = p
	}
	os.Exit(harness.Main(m))
}
