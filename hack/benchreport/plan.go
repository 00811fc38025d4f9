package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A job is one `go test -bench` process. Each area runs in its own process so that its
// peak RSS is its own.
type job struct {
	ID    string
	Pkg   string // package directory relative to the module root, e.g. ./pkg/fold
	Bench string // -bench regexp
	// Benchtime is -benchtime (default 1x: every benchmark here sizes its own work).
	Benchtime, QuickBenchtime string
	// Keys is the fold size, passed as SLIPSTREAM_BENCH_KEYS or KeysEnv (0: not set);
	// QuickKeys replaces it with -quick.
	Keys, QuickKeys int
	KeysEnv         string
	// Env is further environment; QuickEnv overrides it with -quick.
	Env, QuickEnv map[string]string
}

const seconds = "SLIPSTREAM_BENCH_SECONDS"

var benchSeconds = map[string]string{seconds: "5"}
var quickSeconds = map[string]string{seconds: "1"}

// plan is every job `make bench` runs, in order.
var plan = []job{
	{ID: "catchup-100k", Pkg: "./pkg/fold", Bench: "^BenchmarkCatchUp$", Benchtime: "5x", QuickBenchtime: "3x", Keys: 100_000, QuickKeys: 10_000},
	{ID: "catchup-1m", Pkg: "./pkg/fold", Bench: "^BenchmarkCatchUp$", Benchtime: "5x", QuickBenchtime: "3x", Keys: 1_000_000, QuickKeys: 50_000},
	{ID: "catchup-1m-shuffled", Pkg: "./pkg/fold", Bench: "^BenchmarkCatchUp$", Benchtime: "3x", QuickBenchtime: "3x", Keys: 1_000_000, QuickKeys: 50_000,
		Env: map[string]string{"SLIPSTREAM_BENCH_ORDER": "shuffled"}},
	{ID: "kv-watch-1m", Pkg: "./pkg/kv", Bench: "^Benchmark(WatchFullBucket|ResumeLatency)$", Benchtime: "5x", QuickBenchtime: "3x", Keys: 1_000_000, QuickKeys: 50_000},
	{ID: "ingest-1m", Pkg: "./pkg/fold/pebble", Bench: "^BenchmarkIngest$", Keys: 1_000_000, QuickKeys: 50_000},
	{ID: "restart-100k", Pkg: "./pkg/fold", Bench: "^BenchmarkRestartVsNaive$", Keys: 100_000, QuickKeys: 10_000},
	{ID: "restart-1m", Pkg: "./pkg/fold", Bench: "^BenchmarkRestartVsNaive$", Keys: 1_000_000, QuickKeys: 30_000},
	{ID: "restart-5m", Pkg: "./pkg/fold", Bench: "^BenchmarkRestartVsNaive$", Keys: 5_000_000, QuickKeys: 60_000},
	{ID: "restart-pair-1m", Pkg: "./pkg/fold", Bench: "^BenchmarkRestart$", Keys: 1_000_000, QuickKeys: 20_000},
	{ID: "resync-1m", Pkg: "./pkg/fold", Bench: "^BenchmarkResyncDiff$", Keys: 1_000_000, QuickKeys: 50_000},
	{ID: "propagation-fold", Pkg: "./pkg/fold", Bench: "^BenchmarkPropagation$", Env: benchSeconds, QuickEnv: quickSeconds},
	{ID: "propagation-agent", Pkg: "./test/agent", Bench: "^BenchmarkPropagation$", Env: benchSeconds, QuickEnv: quickSeconds},
	{ID: "read-load-1m", Pkg: "./test/agent", Bench: "^BenchmarkReadAPIUnderLoad$", Keys: 1_000_000, QuickKeys: 20_000, Env: benchSeconds, QuickEnv: quickSeconds},
	{ID: "read-idle-1m", Pkg: "./test/agent", Bench: "^BenchmarkReadAPI$", Keys: 1_000_000, QuickKeys: 20_000, Env: benchSeconds, QuickEnv: quickSeconds},
	{ID: "get-1m", Pkg: "./pkg/fold/pebble", Bench: "^BenchmarkGetP99$", Benchtime: "200000x", QuickBenchtime: "20000x", Keys: 1_000_000, QuickKeys: 50_000},
	{ID: "export-1m", Pkg: "./pkg/export", Bench: "^Benchmark(ExportFile|Import)$", Keys: 1_000_000, QuickKeys: 50_000},
	{ID: "bootstrap-1m", Pkg: "./pkg/export", Bench: "^BenchmarkBootstrap$", Benchtime: "3x", QuickBenchtime: "1x", Keys: 1_000_000, QuickKeys: 50_000},
	{ID: "rss-pebble-5m", Pkg: "./pkg/fold/pebble", Bench: "^BenchmarkPeakRSS$", Keys: 5_000_000, QuickKeys: 200_000, KeysEnv: "SLIPSTREAM_RSS_KEYS"},
	{ID: "memory-overhead-1m", Pkg: "./pkg/fold/memory", Bench: "^BenchmarkMemoryOverhead$", Keys: 1_000_000, QuickKeys: 50_000},
	// Micro-benchmarks: b.N scales with -benchtime.
	{ID: "pebble-apply", Pkg: "./pkg/fold/pebble", Bench: "^BenchmarkApply$", Benchtime: "2s", QuickBenchtime: "100ms"},
	{ID: "memory-apply-get", Pkg: "./pkg/fold/memory", Bench: "^Benchmark(Apply|Get)$", Benchtime: "2s", QuickBenchtime: "100ms"},
	{ID: "agent-get-handler", Pkg: "./internal/agent", Bench: "^BenchmarkGetHandler$", Benchtime: "2s", QuickBenchtime: "100ms"},
	{ID: "controller-aggregate", Pkg: "./internal/controller", Bench: "^BenchmarkAggregate1000Nodes$", Benchtime: "2s", QuickBenchtime: "100ms"},
	{ID: "kv-parse-ack", Pkg: "./pkg/kv", Bench: "^BenchmarkParseDecimal$", Benchtime: "2s", QuickBenchtime: "100ms"},
}

// resolved is a job with its mode applied: what exactly runs.
type resolved struct {
	job
	Benchtime string
	Keys      int
	Env       []string // sorted NAME=value, SLIPSTREAM_BENCH_KEYS included
}

func (j job) resolve(quick bool) resolved {
	r := resolved{job: j, Benchtime: j.Benchtime, Keys: j.Keys}
	env := maps.Clone(j.Env)
	if env == nil {
		env = map[string]string{}
	}
	if quick {
		if j.QuickBenchtime != "" {
			r.Benchtime = j.QuickBenchtime
		}
		if j.QuickKeys > 0 {
			r.Keys = j.QuickKeys
		}
		maps.Copy(env, j.QuickEnv)
	}
	if r.Benchtime == "" {
		r.Benchtime = "1x"
	}
	if r.Keys > 0 {
		name := j.KeysEnv
		if name == "" {
			name = "SLIPSTREAM_BENCH_KEYS"
		}
		env[name] = strconv.Itoa(r.Keys)
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		r.Env = append(r.Env, k+"="+env[k])
	}
	return r
}

// command is the shell command that reproduces the job from the module root.
func (r resolved) command() string {
	parts := append(slices.Clone(r.Env), "go", "test", "-count=1", "-run", "'^$'",
		"-bench", "'"+r.Bench+"'", "-benchtime", r.Benchtime, r.Pkg)
	return strings.Join(parts, " ")
}

// jobTimeout bounds one job; a job past it is killed and reported as failed.
const jobTimeout = 20 * time.Minute

// sizeLabel formats a key count as 100k, 1M, 5M, 50k.
func sizeLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	default:
		return strconv.Itoa(n)
	}
}
