// Command agent is the Slipstream node agent: `agent run` keeps a fold of a NATS JetStream
// KV bucket in sync and serves it locally; `dump`, `inspect` and `verify` work on a fold
// directory offline; `export` and `import` copy a fold to and from object storage. See
// `agent help` and internal/agent.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipstream-dev/slipstream/internal/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := agent.Main(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
