package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/slipstream-dev/slipstream/pkg/export"
)

const mainUsage = `Usage: agent <command> [flags]

The Slipstream node agent: keeps a durable local fold of a NATS JetStream KV bucket in sync
and serves it to the applications on this node.

Commands:
  run       keep a fold in sync and serve the local read API (agent run --help)
  dump      print the fold of --data-dir as NDJSON sorted by key
  inspect   print the backend, cursor, key count and sizes of --data-dir as JSON
  verify    check the integrity of the fold in --data-dir
  export    write the fold of --data-dir as one export object to --to URL (agent export --help)
  import    seed --data-dir from the newest valid export under --from URL (agent import --help)
  help      print this help

Read API (on --listen, default 127.0.0.1:7070):
  GET /v1/status                         phase, cursor, pending, lag, keys, counters, last error
  GET /v1/keys/{key}                     raw value; X-Slipstream-Revision; 404 when absent;
                                         X-Slipstream-Stale: true while Degraded
  GET /v1/keys?prefix=P[&limit=N]        NDJSON {"key","value"(base64),"revision"} ordered by key;
                                         X-Slipstream-Cursor: the cursor of the snapshot
  GET /v1/watch?after=CURSOR[&prefix=P]  NDJSON of updates as applied, resumable after CURSOR
  POST /v1/export                        start an export now (--export-url): 202; 409 when one
                                         runs, another agent holds the export lease, or not Live
  GET /healthz, /readyz (200 only when Live), /metrics (Prometheus)
` + exitCodeHelp

// Main runs the agent command line and returns the process exit code. ctx is cancelled on
// SIGTERM/SIGINT by the caller.
func Main(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		fmt.Fprintln(stderr, "\nerror: missing command")
		return ExitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, mainUsage)
		return ExitOK
	case "run":
		return mainRun(ctx, rest, getenv, stdout, stderr)
	case "dump", "inspect", "verify":
		return mainOffline(cmd, rest, getenv, stdout, stderr)
	case "export":
		return mainExport(ctx, rest, getenv, stdout, stderr)
	case "import":
		return mainImport(ctx, rest, getenv, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "error: unknown command %q (want run, dump, inspect, verify, export, import or help)\n", cmd)
		return ExitUsage
	}
}

func mainRun(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := ParseRun(args, getenv, stdout)
	if errors.Is(err, errHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return ExitUsage
	}
	log := newLogger(cfg, stderr)
	a, err := New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		var ce *ConfigError
		if errors.As(err, &ce) {
			return ExitUsage
		}
		return ExitFailure
	}
	log.Info("agent starting", logBucket, cfg.Bucket, "prefixes", strings.Join(cfg.Prefixes, ","),
		"backend", cfg.Backend, "dir", cfg.DataDir, "nats", redactedURLs(cfg.NATSURLs), "exportLocation", exportDesc(cfg),
		"mode", modeDesc(cfg))
	if err := a.Run(ctx); err != nil {
		log.Error("agent failed", logError, err)
		return ExitFailure
	}
	log.Info("agent stopped")
	return ExitOK
}

// exportDesc describes the export configuration for the startup log (the location without
// its query, which may carry endpoints and options).
func exportDesc(cfg Config) string {
	if cfg.ExportURL == "" {
		return "none"
	}
	d := export.Redact(cfg.ExportURL)
	switch {
	case cfg.ExportSchedule != "":
		d += " schedule=" + cfg.ExportSchedule
	case cfg.ExportInterval > 0:
		d += " every=" + cfg.ExportInterval.String()
	default:
		d += " (seed and on demand only)"
	}
	return d
}

// modeDesc names standalone or cluster mode (with the KVFold and the node) for the log.
func modeDesc(cfg Config) string {
	if c := cfg.Cluster; c != nil {
		return fmt.Sprintf("cluster (KVFold %s/%s, node %s, pod %s)", c.Namespace, c.Fold, c.Node, c.Pod)
	}
	return "standalone"
}

func redactedURLs(us []string) string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = redactURL(u)
	}
	return strings.Join(out, ",")
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
