package main

// A ref names one metric of one benchmark result: the job that produced it (empty: the
// row's job), the benchmark name without "Benchmark" and the GOMAXPROCS suffix (sub-benchmarks
// as "Import/pebble"), and the unit the benchmark reported it in.
type ref struct {
	Job, Bench, Unit string
}

// A goal is a target from the issues, checked against the row's ratio or figure.
type goal struct {
	Text   string  // as the report shows it, e.g. ">= 0.85x raw"
	On     string  // "ratio" or "figure"
	Op     string  // ">=", "<=" or "<"
	Value  float64 // in the unit of what it is checked against
	Source string  // where the goal comes from, e.g. "#3"
}

// A row is one line of an area's table.
type row struct {
	Job string
	// Label and BaseLabel: "{keys}" becomes the job's size (e.g. 1M).
	Label string
	// Figure is what Slipstream achieves; Base is the baseline measured in the same run
	// (nil: none) and BaseLabel says what it is.
	Figure    ref
	Base      *ref
	BaseLabel string
	// Ratio, when set, is the benchmark's own ratio metric; otherwise Figure/Base.
	Ratio *ref
	// RatioRange, when set, is the lowest and the highest ratio of the benchmark's rounds,
	// shown after the ratio.
	RatioRange *[2]ref
	Goal       *goal
	// Display unit and the factor from the reported unit to it (0 means 1).
	Unit  string
	Scale float64
}

// An area is one table of the report.
type area struct {
	Title, Intro string
	Rows         []row
	Plot         bool // the restart plot goes under this area
}

func r(job, bench, unit string) ref { return ref{Job: job, Bench: bench, Unit: unit} }
func same(bench, unit string) ref   { return ref{Bench: bench, Unit: unit} }
func p(x ref) *ref                  { return &x }

// spread names the metrics <unit>_min and <unit>_max of bench (see row.RatioRange).
func spread(bench, unit string) *[2]ref {
	return &[2]ref{same(bench, unit+"_min"), same(bench, unit+"_max")}
}

func atLeast(v float64, text, src string) *goal {
	return &goal{Text: text, On: "ratio", Op: ">=", Value: v, Source: src}
}
func atMostRatio(v float64, text, src string) *goal {
	return &goal{Text: text, On: "ratio", Op: "<=", Value: v, Source: src}
}
func below(v float64, text, src string) *goal {
	return &goal{Text: text, On: "figure", Op: "<", Value: v, Source: src}
}

var areas = []area{
	{
		Title: "Catch-up throughput",
		Intro: "An empty fold catching up on a whole bucket of 256-byte values through `fold.Loop` until " +
			"Synced (SyncNone: the figure is folding work, not fsync latency). Baseline: a raw " +
			"`jetstream.OrderedConsumer` (DeliverLastPerSubject, Consume callback) that only counts the " +
			"messages, on the same stream in the same process: the NATS delivery ceiling. " +
			"Each job runs rounds of a raw pass and a fold per backend in rotating order; the ratio is " +
			"the median of the rounds' ratios, with the lowest and highest in brackets. " +
			"The 100k jobs carry no goal (the issue states it for 1M). The other jobs write the bucket in " +
			"key order, so a catch-up inserts every key after the last one; the shuffled job writes the same " +
			"keys in a fixed random order, as most real buckets are, and carries no goal either. " +
			"The watch-and-loop rows fold into a store that applies each batch's cursor and drops its " +
			"updates: the same watch, batching and hand-off with no store work, so their ratio is about " +
			"the most any backend's ratio can reach on this machine. Every phase runs at about the same " +
			"number of cores (the _cores metrics under All results), so a phase's rate follows the " +
			"inverse of its CPU per message (_cpu_us/msg).",
		Rows: []row{
			{Job: "catchup-100k", Label: "watch and loop alone (a store that records only the cursor), {keys} keys", Figure: same("CatchUp", "cursoronly_msgs/s"), Base: p(same("CatchUp", "raw_msgs/s")), BaseLabel: "raw consumer", Ratio: p(same("CatchUp", "cursoronly_ratio")), RatioRange: spread("CatchUp", "cursoronly_ratio"), Unit: "msgs/s"},
			{Job: "catchup-100k", Label: "memory fold, {keys} keys", Figure: same("CatchUp", "memory_msgs/s"), Base: p(same("CatchUp", "raw_msgs/s")), BaseLabel: "raw consumer", Ratio: p(same("CatchUp", "memory_ratio")), RatioRange: spread("CatchUp", "memory_ratio"), Unit: "msgs/s"},
			{Job: "catchup-100k", Label: "pebble fold, {keys} keys", Figure: same("CatchUp", "pebble_msgs/s"), Base: p(same("CatchUp", "raw_msgs/s")), BaseLabel: "raw consumer", Ratio: p(same("CatchUp", "pebble_ratio")), RatioRange: spread("CatchUp", "pebble_ratio"), Unit: "msgs/s"},
			{Job: "catchup-1m", Label: "watch and loop alone (a store that records only the cursor), {keys} keys", Figure: same("CatchUp", "cursoronly_msgs/s"), Base: p(same("CatchUp", "raw_msgs/s")), BaseLabel: "raw consumer", Ratio: p(same("CatchUp", "cursoronly_ratio")), RatioRange: spread("CatchUp", "cursoronly_ratio"), Unit: "msgs/s"},
			{Job: "catchup-1m", Label: "memory fold, {keys} keys", Figure: same("CatchUp", "memory_msgs/s"), Base: p(same("CatchUp", "raw_msgs/s")), BaseLabel: "raw consumer", Ratio: p(same("CatchUp", "memory_ratio")), RatioRange: spread("CatchUp", "memory_ratio"), Unit: "msgs/s", Goal: atLeast(0.95, ">= 0.95x raw", "#3")},
			{Job: "catchup-1m", Label: "pebble fold, {keys} keys", Figure: same("CatchUp", "pebble_msgs/s"), Base: p(same("CatchUp", "raw_msgs/s")), BaseLabel: "raw consumer", Ratio: p(same("CatchUp", "pebble_ratio")), RatioRange: spread("CatchUp", "pebble_ratio"), Unit: "msgs/s", Goal: atLeast(0.85, ">= 0.85x raw", "#3")},
			{Job: "catchup-1m-shuffled", Label: "watch and loop alone (a store that records only the cursor), {keys} keys written in random order", Figure: same("CatchUp", "cursoronly_msgs/s"), Base: p(same("CatchUp", "raw_msgs/s")), BaseLabel: "raw consumer", Ratio: p(same("CatchUp", "cursoronly_ratio")), RatioRange: spread("CatchUp", "cursoronly_ratio"), Unit: "msgs/s"},
			{Job: "catchup-1m-shuffled", Label: "memory fold, {keys} keys written in random order", Figure: same("CatchUp", "memory_msgs/s"), Base: p(same("CatchUp", "raw_msgs/s")), BaseLabel: "raw consumer", Ratio: p(same("CatchUp", "memory_ratio")), RatioRange: spread("CatchUp", "memory_ratio"), Unit: "msgs/s"},
			{Job: "catchup-1m-shuffled", Label: "pebble fold, {keys} keys written in random order", Figure: same("CatchUp", "pebble_msgs/s"), Base: p(same("CatchUp", "raw_msgs/s")), BaseLabel: "raw consumer", Ratio: p(same("CatchUp", "pebble_ratio")), RatioRange: spread("CatchUp", "pebble_ratio"), Unit: "msgs/s"},
			{Job: "kv-watch-1m", Label: "pkg/kv state-sync watch alone (no store), {keys} keys", Figure: same("WatchFullBucket", "kv_msgs/s"), Base: p(same("WatchFullBucket", "raw_msgs/s")), BaseLabel: "raw consumer", Ratio: p(same("WatchFullBucket", "ratio")), RatioRange: spread("WatchFullBucket", "ratio"), Unit: "msgs/s", Goal: atLeast(0.95, ">= 0.95x raw", "#2")},
			{Job: "ingest-1m", Label: "fold pebble store `Apply`, 1k-key batches, {keys} keys (no NATS)", Figure: same("Ingest", "fold_keys/s"), Base: p(same("Ingest", "raw_keys/s")), BaseLabel: "raw Pebble `Batch.Commit(NoSync)` of the same batches, with Pebble's default table options and no cursor or count keys", Ratio: p(same("Ingest", "ratio")), Unit: "keys/s"},
		},
	},
	{
		Title: "Restart cost against fold size",
		Intro: "A pebble fold restarting 1,000 updates behind its bucket: store open + `fold.Loop` until " +
			"Synced (verified resume, then the delta), median of 5 restarts. Baseline: what a user would " +
			"write without Slipstream, nats.go `jetstream.KeyValue.WatchAll` into a Go map, which replays " +
			"the whole bucket on every restart (median of 3 up to 1M keys, 1 run at 5M). The bucket is " +
			"filled through NATS; the fold is written straight into the store with the bucket's keys, " +
			"values and revisions (the benchmark checks that the resume accepts it and applies nothing), " +
			"which is the state a catch-up reaches without paying for one. The last row is " +
			"`BenchmarkRestart`: a 1M-key and a 100k-key fold, both caught up through NATS, restarted " +
			"alternately in one process, five times each (medians). The job's peak RSS holds the in-process " +
			"nats-server with the whole bucket as well as the fold or the naive map.",
		Plot: true,
		Rows: []row{
			{Job: "restart-100k", Label: "restart, {keys} keys", Figure: same("RestartVsNaive", "restart_ms"), Base: p(same("RestartVsNaive", "naive_ms")), BaseLabel: "naive WatchAll replay", Unit: "ms"},
			{Job: "restart-1m", Label: "restart, {keys} keys", Figure: same("RestartVsNaive", "restart_ms"), Base: p(same("RestartVsNaive", "naive_ms")), BaseLabel: "naive WatchAll replay", Unit: "ms", Goal: below(150, "< 150 ms", "#3")},
			{Job: "restart-5m", Label: "restart, {keys} keys", Figure: same("RestartVsNaive", "restart_ms"), Base: p(same("RestartVsNaive", "naive_ms")), BaseLabel: "naive WatchAll replay", Unit: "ms"},
			{Job: "restart-pair-1m", Label: "restart, {keys} keys vs a tenth of that (one process, folds caught up through NATS)", Figure: same("Restart", "big_restart_ms"), Base: p(same("Restart", "small_restart_ms")), BaseLabel: "restart of the tenth-size fold", Ratio: p(same("Restart", "big/small")), Unit: "ms", Goal: atMostRatio(1.3, "<= 1.3x the 100k-key restart", "#3")},
		},
	},
	{
		Title: "Full resync with diff",
		Intro: "A pebble fold of the whole bucket marked Resyncing: full state-sync replay with the exact " +
			"diff (local keys missing from the bucket deleted), against a plain full replay into an empty " +
			"store, same process, same bucket.",
		Rows: []row{
			{Job: "resync-1m", Label: "resync with diff, {keys} keys", Figure: same("ResyncDiff", "resync_s"), Base: p(same("ResyncDiff", "replay_s")), BaseLabel: "plain full replay", Ratio: p(same("ResyncDiff", "ratio")), Unit: "s", Goal: atMostRatio(1.5, "<= 1.5x replay", "#3")},
		},
	},
	{
		Title: "Propagation latency",
		Intro: "Puts at 1,000/s to 500 keys (open loop), default batching (10 ms window, 100 updates), " +
			"latency from just before `Put` until the update is visible. In process: through the fold's " +
			"`Get` (pebble, fsync per apply), with a raw ordered consumer (DeliverNew) on the same " +
			"stream timing the same puts at the same time as the baseline. Agent: through " +
			"`GET /v1/keys/{key}` on a real agent process, compared with the raw consumer figures of " +
			"the in-process job of this run.",
		Rows: []row{
			{Job: "propagation-fold", Label: "fold `Get`, p50", Figure: same("Propagation", "fold-p50-ms"), Base: p(same("Propagation", "raw-p50-ms")), BaseLabel: "raw consumer p50", Unit: "ms"},
			{Job: "propagation-fold", Label: "fold `Get`, p99", Figure: same("Propagation", "fold-p99-ms"), Base: p(same("Propagation", "raw-p99-ms")), BaseLabel: "raw consumer p99", Unit: "ms"},
			{Job: "propagation-agent", Label: "agent `GET /v1/keys/{key}`, p50", Figure: same("Propagation", "propagation-p50-ms"), Base: p(r("propagation-fold", "Propagation", "raw-p50-ms")), BaseLabel: "raw consumer p50 (job propagation-fold)", Unit: "ms"},
			{Job: "propagation-agent", Label: "agent `GET /v1/keys/{key}`, p99", Figure: same("Propagation", "propagation-p99-ms"), Base: p(r("propagation-fold", "Propagation", "raw-p99-ms")), BaseLabel: "raw consumer p99 (job propagation-fold)", Unit: "ms", Goal: below(20, "p99 < 20 ms", "#4")},
		},
	},
	{
		Title: "Read latency",
		Intro: "HTTP: `GET /v1/keys/{key}` for random keys at 5,000/s (open loop, 16 keep-alive workers) on " +
			"loopback against a real agent process serving a pebble fold. Under load, the agent applies " +
			"1,000 puts/s from NATS while it serves; the baseline is a plain `net/http` server answering " +
			"the same GETs from a Go map, measured right after under the same write stream. Idle: the " +
			"agent serves with NATS unreachable (no writes). In-process: `Store.Get` of random keys on a " +
			"reopened pebble fold (reads from sstables); its baseline is a loop of register arithmetic " +
			"timed as often as the Gets and sized to the Get's median, whose p99 is what interrupts, " +
			"preemption and steal time alone do to an operation that long on this machine.",
		Rows: []row{
			{Job: "read-load-1m", Label: "agent GET under 1,000 writes/s, {keys} keys, p50", Figure: same("ReadAPIUnderLoad", "get-p50-ms"), Base: p(same("ReadAPIUnderLoad", "plain-p50-ms")), BaseLabel: "plain net/http + map, p50", Unit: "ms"},
			{Job: "read-load-1m", Label: "agent GET under 1,000 writes/s, {keys} keys, p99", Figure: same("ReadAPIUnderLoad", "get-p99-ms"), Base: p(same("ReadAPIUnderLoad", "plain-p99-ms")), BaseLabel: "plain net/http + map, p99", Unit: "ms", Goal: below(1, "p99 < 1 ms", "#4")},
			{Job: "read-idle-1m", Label: "agent GET, idle fold, {keys} keys, p50", Figure: same("ReadAPI", "get-p50-ms"), Unit: "ms"},
			{Job: "read-idle-1m", Label: "agent GET, idle fold, {keys} keys, p99", Figure: same("ReadAPI", "get-p99-ms"), Unit: "ms", Goal: below(1, "p99 < 1 ms", "#4")},
			{Job: "get-1m", Label: "in-process pebble `Get`, {keys} keys, p50", Figure: same("GetP99", "p50-us"), Base: p(same("GetP99", "floor-p50-us")), BaseLabel: "pure-CPU loop sized to the Get's p50, p50", Unit: "us"},
			{Job: "get-1m", Label: "in-process pebble `Get`, {keys} keys, p99", Figure: same("GetP99", "p99-us"), Base: p(same("GetP99", "floor-p99-us")), BaseLabel: "the same loop, p99 (the machine's floor)", Unit: "us", Goal: below(20, "p99 < 20 us", "#3")},
		},
	},
	{
		Title: "Export and import",
		Intro: "A pebble fold of 256-byte values exported to `file://` (snapshot, streamed, fsynced) and " +
			"imported back (download, verify, stage into a store, swap, close), against a plain sequential " +
			"write + fsync of the same byte count in the same process. Bootstrap: a new node seeded from " +
			"that export plus a 10k-update tail from NATS, against the import alone.",
		Rows: []row{
			{Job: "export-1m", Label: "export, {keys} keys", Figure: same("ExportFile", "export_MB/s"), Base: p(same("ExportFile", "plain_MB/s")), BaseLabel: "plain sequential file write", Ratio: p(same("ExportFile", "x_plain")), Unit: "MB/s", Goal: atLeast(0.5, ">= 0.5x plain write", "#5")},
			{Job: "export-1m", Label: "import into pebble, {keys} keys", Figure: same("Import/pebble", "import_MB/s"), Base: p(same("Import/pebble", "plain_MB/s")), BaseLabel: "plain sequential file write", Ratio: p(same("Import/pebble", "x_plain")), Unit: "MB/s", Goal: atLeast(0.5, ">= 0.5x plain write", "#5")},
			{Job: "export-1m", Label: "import into memory, {keys} keys", Figure: same("Import/memory", "import_MB/s"), Base: p(same("Import/memory", "plain_MB/s")), BaseLabel: "plain sequential file write", Ratio: p(same("Import/memory", "x_plain")), Unit: "MB/s", Goal: atLeast(0.5, ">= 0.5x plain write", "#5")},
			{Job: "bootstrap-1m", Label: "bootstrap from export + 10k tail, {keys} keys", Figure: same("Bootstrap", "bootstrap_s"), Base: p(same("Bootstrap", "import_s")), BaseLabel: "import alone", Ratio: p(same("Bootstrap", "x_import")), Unit: "s", Goal: atMostRatio(1.5, "<= 1.5x import", "#5")},
		},
	},
	{
		Title: "Memory",
		Intro: "Pebble: a fold of 5M keys of 256 bytes written straight into the store, reopened and read (100k random Gets); the " +
			"figure is the process's VmHWM. Memory backend: heap of a loaded fold (reopened, after GC) " +
			"against the raw key+value bytes (17-byte keys). The peak RSS column of every table is the " +
			"job's whole process group (test process, nats-server, agent), sampled.",
		Rows: []row{
			{Job: "rss-pebble-5m", Label: "pebble fold peak RSS (VmHWM), {keys} keys", Figure: same("PeakRSS", "peak_rss_MiB"), Unit: "MiB", Goal: below(300, "< 300 MiB at 5M keys", "#3")},
			{Job: "memory-overhead-1m", Label: "memory fold heap per key, 256 B values, {keys} keys", Figure: same("MemoryOverhead/value256", "heap-B/key"), Ratio: p(same("MemoryOverhead/value256", "x-raw")), BaseLabel: "raw key+value bytes", Unit: "B/key", Goal: atMostRatio(2, "<= 2x raw", "#3")},
			{Job: "memory-overhead-1m", Label: "memory fold heap per key, 32 B values, {keys} keys", Figure: same("MemoryOverhead/value32", "heap-B/key"), Ratio: p(same("MemoryOverhead/value32", "x-raw")), BaseLabel: "raw key+value bytes", Unit: "B/key", Goal: atMostRatio(2, "<= 2x raw", "#3")},
		},
	},
}
