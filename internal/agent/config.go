package agent

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// EnvPrefix prefixes the environment variable of every flag: --nats-url is
// SLIPSTREAM_NATS_URL, --batch-window is SLIPSTREAM_BATCH_WINDOW.
const EnvPrefix = "SLIPSTREAM_"

// Defaults of the run command.
const (
	DefaultListen       = "127.0.0.1:7070"
	DefaultBackend      = "pebble"
	DefaultBatchWindow  = 10 * time.Millisecond
	DefaultBatchMax     = 100
	DefaultRateLimit    = 20000
	DefaultMaxWatchers  = 256
	DefaultWatchRing    = 65536
	DefaultExportRetain = 5
	DefaultLeaseBucket  = "slipstream_leases"
)

// Config is the validated configuration of `agent run`.
type Config struct {
	NATSURLs    []string      // one or more nats://, tls://, ws:// or wss:// URLs
	CredsFile   string        // optional NATS .creds file
	Bucket      string        // KV bucket name
	Prefixes    []string      // scope; empty: the whole bucket
	Backend     string        // "pebble" or "memory"
	PebbleSync  bool          // pebble: fsync every applied batch (default true)
	PebbleCache int64         // pebble: block cache bytes (0: the store's default, 64 MiB)
	DataDir     string        // fold directory
	Listen      string        // host:port of the read API
	BatchWindow time.Duration // batch closes this long after its first update
	BatchMax    int           // batch closes at this many updates
	TokenFile   string        // optional bearer token file protecting the API (not health)
	RateLimit   float64       // API requests per second (0: unlimited)
	MaxWatchers int           // concurrent /v1/watch streams
	WatchRing   int           // applied updates kept in memory for /v1/watch resumption
	LogLevel    string        // debug, info, warn, error
	LogFormat   string        // text or json
	FoldFile    string        // the manifest the spec came from, if any

	// NATS authentication and TLS from files (all optional; see natsauth.go). At most one
	// of CredsFile, NATSAuth.NKeySeedFile, the user/password pair and the token file.
	NATSAuth NATSAuth

	// Exports (all optional). With ExportURL set the agent seeds an empty or expired fold
	// from the newest usable export there and accepts POST /v1/export; with an interval or
	// a schedule as well it exports on its own while it holds the export lease.
	ExportURL         string
	ExportInterval    time.Duration // 0: no interval
	ExportSchedule    string        // cron expression ("" : none)
	ExportCron        cron.Schedule // ExportSchedule parsed
	ExportRetain      int           // newest exports kept after each export
	ExportGrace       time.Duration // exports younger than this are never deleted
	ExportLeaseBucket string        // NATS KV bucket holding the export lease
	ExportHolder      string        // this exporter's name in the lease (never a secret)

	// Cluster is set when the agent runs in a KVFold's DaemonSet (SLIPSTREAM_KVFOLD_NAME
	// set): it then reports to its KVFoldNode and elects the exporter with the fold's
	// Lease (cluster.go). nil: standalone.
	Cluster *ClusterConfig
}

// ConfigError is an invalid command line or configuration: the process exits with
// ExitUsage and prints the message.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func configErrorf(format string, args ...any) error {
	return &ConfigError{Msg: fmt.Sprintf(format, args...)}
}

// errHelp is returned when --help was asked for: usage is printed and the exit is 0.
var errHelp = errors.New("help requested")

// listFlag is a repeatable string flag; an environment value is comma separated.
type listFlag struct{ vals *[]string }

func (l listFlag) String() string {
	if l.vals == nil {
		return ""
	}
	return strings.Join(*l.vals, ",")
}

func (l listFlag) Set(s string) error {
	*l.vals = append(*l.vals, s)
	return nil
}

// rawRun holds the run flags as given, before validation.
type rawRun struct {
	natsURL, credsFile, bucket, backend, dataDir, listen string
	nkeySeedFile, userFile, passwordFile, natsTokenFile  string
	tlsCAFile, tlsCertFile, tlsKeyFile                   string
	prefixes                                             []string
	batchWindow                                          string
	batchMax                                             string
	exportURL, exportInterval, exportSchedule            string
	exportRetain, exportLeaseBucket, exportHolder        string
	exportGrace                                          string
	foldFile, tokenFile                                  string
	rateLimit, maxWatchers, watchRing                    string
	logLevel, logFormat                                  string
	pebbleSync, pebbleCache                              string
}

func runFlagSet(r *rawRun, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("agent run", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&r.natsURL, "nats-url", "", "NATS server URL(s), comma separated (required unless in --fold-file)")
	fs.StringVar(&r.credsFile, "creds-file", "", "NATS credentials (.creds) file; re-read on reconnect")
	fs.StringVar(&r.nkeySeedFile, "nkey-seed-file", "", "NATS NKey user seed file (instead of --creds-file)")
	fs.StringVar(&r.userFile, "nats-user-file", "", "file holding the NATS user name (with --nats-password-file)")
	fs.StringVar(&r.passwordFile, "nats-password-file", "", "file holding the NATS password (with --nats-user-file)")
	fs.StringVar(&r.natsTokenFile, "nats-token-file", "", "file holding a NATS authentication token")
	fs.StringVar(&r.tlsCAFile, "tls-ca-file", "", "PEM CA bundle to verify the NATS server with (turns TLS on)")
	fs.StringVar(&r.tlsCertFile, "tls-cert-file", "", "PEM client certificate for NATS (with --tls-key-file; both may name missing files: no client certificate)")
	fs.StringVar(&r.tlsKeyFile, "tls-key-file", "", "PEM client key for NATS (with --tls-cert-file)")
	fs.StringVar(&r.bucket, "bucket", "", "JetStream KV bucket to fold (required unless in --fold-file)")
	fs.Var(listFlag{&r.prefixes}, "prefix", "fold only keys under this prefix, ending in \".\" (repeatable; env: comma separated); default: whole bucket")
	fs.StringVar(&r.backend, "backend", DefaultBackend, "fold store backend: pebble or memory")
	fs.StringVar(&r.pebbleSync, "pebble-sync", "true", "pebble: fsync the WAL before each batch counts as applied (false: Pebble syncs in the background; a machine crash may lose the last batches, which NATS then re-delivers)")
	fs.StringVar(&r.pebbleCache, "pebble-cache-size", "", "pebble: block cache size in bytes (1 MiB..64 GiB; default 64 MiB)")
	fs.StringVar(&r.dataDir, "data-dir", "", "directory of the fold store (required)")
	fs.StringVar(&r.listen, "listen", DefaultListen, "host:port of the local read API")
	fs.StringVar(&r.batchWindow, "batch-window", DefaultBatchWindow.String(), "a batch is applied this long after its first update (1µs..10s)")
	fs.StringVar(&r.batchMax, "batch-max", strconv.Itoa(DefaultBatchMax), "a batch is applied at this many updates (1..100000)")
	fs.StringVar(&r.exportURL, "export-url", "", "export location (file:///dir, s3://bucket?endpoint=..., gs://, azblob://; credentials from the environment): an empty or expired fold seeds from the newest usable export there; enables POST /v1/export")
	fs.StringVar(&r.exportInterval, "export-interval", "", "export every interval (e.g. 15m) while holding the export lease, unless the fold has not moved since the last export; excludes --export-schedule")
	fs.StringVar(&r.exportSchedule, "export-schedule", "", "export on this cron schedule (5 fields, or @hourly, @every 10m) while holding the export lease; excludes --export-interval")
	fs.StringVar(&r.exportRetain, "export-retain", strconv.Itoa(DefaultExportRetain), "keep this many newest exports (older ones past --export-grace are deleted after each export)")
	fs.StringVar(&r.exportGrace, "export-grace", "1h", "never delete an export younger than this (a seeding node may be downloading it)")
	fs.StringVar(&r.exportLeaseBucket, "export-lease-bucket", DefaultLeaseBucket, "NATS KV bucket holding the export lease (created when missing), so one agent per fold exports")
	fs.StringVar(&r.exportHolder, "export-holder", "", "this agent's name in the export lease, stored in NATS and logged (default: <host name>/<pid>)")
	fs.StringVar(&r.foldFile, "fold-file", "", "read nats urls, bucket, scope, backend and batching from a KVFold manifest (flags and env override it)")
	fs.StringVar(&r.tokenFile, "token-file", "", "require \"Authorization: Bearer <token>\" on the API (not /healthz, /readyz) with the token in this file")
	fs.StringVar(&r.rateLimit, "rate-limit", strconv.Itoa(DefaultRateLimit), "API requests per second across all clients (0: unlimited)")
	fs.StringVar(&r.maxWatchers, "max-watchers", strconv.Itoa(DefaultMaxWatchers), "concurrent /v1/watch streams")
	fs.StringVar(&r.watchRing, "watch-ring", strconv.Itoa(DefaultWatchRing), "applied updates kept in memory so /v1/watch can resume")
	fs.StringVar(&r.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&r.logFormat, "log-format", "text", "log format: text or json")
	return fs
}

// envName returns the environment variable of a flag.
func envName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ParseRun parses the arguments of `agent run`. Precedence: command line, then SLIPSTREAM_*
// environment variables, then the --fold-file manifest, then defaults. getenv is os.LookupEnv
// in production. Errors are *ConfigError (or errHelp after printing usage).
func ParseRun(args []string, getenv func(string) (string, bool), usageOut io.Writer) (Config, error) {
	var r rawRun
	fs := runFlagSet(&r, usageOut)
	fs.Usage = func() { runUsage(fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, errHelp
		}
		return Config{}, configErrorf("%v", err)
	}
	if fs.NArg() > 0 {
		return Config{}, configErrorf("unexpected argument %q: run takes only flags", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// Environment for every flag not given on the command line.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if envErr != nil || set[f.Name] {
			return
		}
		v, ok := getenv(envName(f.Name))
		if !ok {
			return
		}
		if f.Name == "prefix" {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					r.prefixes = append(r.prefixes, p)
				}
			}
		} else if err := fs.Set(f.Name, v); err != nil {
			envErr = configErrorf("%s: %v", envName(f.Name), err)
		}
		set[f.Name] = true
	})
	if envErr != nil {
		return Config{}, envErr
	}

	if r.foldFile != "" {
		m, err := readFoldFile(r.foldFile)
		if err != nil {
			return Config{}, err
		}
		if err := m.applyTo(&r, set); err != nil {
			return Config{}, err
		}
	}
	c, err := r.validate()
	if err != nil {
		return Config{}, err
	}
	if c.Cluster, err = parseClusterEnv(getenv, c.ExportURL != ""); err != nil {
		return Config{}, err
	}
	return c, nil
}

func runUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, `Usage: agent run --nats-url URL --bucket B --data-dir DIR [flags]

Keep a fold of a NATS JetStream KV bucket in DIR in sync and serve it on --listen.
Every flag can also be set with an environment variable SLIPSTREAM_<FLAG> (upper case,
dashes as underscores, e.g. SLIPSTREAM_NATS_URL); the command line wins over the
environment, which wins over --fold-file.

In a KVFold's DaemonSet the operator also sets SLIPSTREAM_KVFOLD_NAME, _KVFOLD_NAMESPACE,
_NODE_NAME, _POD_NAME and _EXPORT_LEASE: the agent then runs in cluster mode. It writes its
KVFoldNode's status, exports on request of the KVFold's slipstream.dev/export-now annotation
and elects the exporter with the fold's Lease instead of --export-lease-bucket.

Flags:
`)
	printFlags(fs, true)
	fmt.Fprint(w, exitCodeHelp)
}

// printFlags prints the flags GNU style (--name), with defaults and, when env is set, the
// environment variable of each.
func printFlags(fs *flag.FlagSet, env bool) {
	w := fs.Output()
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(w, "  --%s\n        %s", f.Name, f.Usage)
		if f.DefValue != "" && f.DefValue != "[]" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		if env {
			fmt.Fprintf(w, " [$%s]", envName(f.Name))
		}
		fmt.Fprintln(w)
	})
}

const exitCodeHelp = `
Exit codes:
  0  success (run: drained and stopped after SIGTERM/SIGINT)
  1  fatal runtime failure
  2  invalid command line or configuration
  3  the data directory holds no usable fold, or verify found a problem
`

func (r *rawRun) validate() (Config, error) {
	c := Config{
		CredsFile: r.credsFile,
		Bucket:    r.bucket,
		Backend:   r.backend,
		DataDir:   r.dataDir,
		Listen:    r.listen,
		TokenFile: r.tokenFile,
		LogLevel:  r.logLevel,
		LogFormat: r.logFormat,
		FoldFile:  r.foldFile,
	}
	if err := r.validateExport(&c); err != nil {
		return Config{}, err
	}
	urls, err := validateNATSURLs(r.natsURL)
	if err != nil {
		return Config{}, err
	}
	c.NATSURLs = urls
	if err := validateBucket(r.bucket); err != nil {
		return Config{}, err
	}
	if c.Prefixes, err = validatePrefixes(r.prefixes); err != nil {
		return Config{}, err
	}
	switch r.backend {
	case "pebble", "memory":
	default:
		return Config{}, configErrorf("--backend %q: unknown backend (want pebble or memory)", r.backend)
	}
	if err := validateDataDir(r.dataDir); err != nil {
		return Config{}, err
	}
	if c.PebbleSync, err = strconv.ParseBool(r.pebbleSync); err != nil {
		return Config{}, configErrorf("--pebble-sync %q: want true or false", r.pebbleSync)
	}
	if r.pebbleCache != "" {
		n, err := strconv.ParseInt(r.pebbleCache, 10, 64)
		if err != nil {
			return Config{}, configErrorf("--pebble-cache-size %q: not a number of bytes", r.pebbleCache)
		}
		if n < 1<<20 || n > 64<<30 {
			return Config{}, configErrorf("--pebble-cache-size %d: out of range (1 MiB..64 GiB)", n)
		}
		c.PebbleCache = n
	}
	if err := validateListen(r.listen); err != nil {
		return Config{}, err
	}
	if c.BatchWindow, err = time.ParseDuration(r.batchWindow); err != nil {
		return Config{}, configErrorf("--batch-window %q: not a duration (e.g. 10ms)", r.batchWindow)
	}
	if c.BatchWindow < time.Microsecond || c.BatchWindow > 10*time.Second {
		return Config{}, configErrorf("--batch-window %s: out of range (1µs..10s)", c.BatchWindow)
	}
	if c.BatchMax, err = intIn("--batch-max", r.batchMax, 1, 100000); err != nil {
		return Config{}, err
	}
	if c.MaxWatchers, err = intIn("--max-watchers", r.maxWatchers, 1, 100000); err != nil {
		return Config{}, err
	}
	if c.WatchRing, err = intIn("--watch-ring", r.watchRing, 16, 10_000_000); err != nil {
		return Config{}, err
	}
	rl, err := strconv.ParseFloat(r.rateLimit, 64)
	if err != nil || rl < 0 || math.IsNaN(rl) || math.IsInf(rl, 0) {
		return Config{}, configErrorf("--rate-limit %q: want a number of requests per second >= 0", r.rateLimit)
	}
	c.RateLimit = rl
	if c.CredsFile != "" {
		if err := readableFile("--creds-file", c.CredsFile); err != nil {
			return Config{}, err
		}
	}
	if c.NATSAuth, err = r.validateNATSAuth(c.NATSURLs); err != nil {
		return Config{}, err
	}
	if c.TokenFile != "" {
		if _, err := readToken(c.TokenFile); err != nil {
			return Config{}, err
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return Config{}, configErrorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return Config{}, configErrorf("--log-format %q: want text or json", c.LogFormat)
	}
	return c, nil
}

func intIn(name, s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, configErrorf("%s %q: not an integer", name, s)
	}
	if n < lo || n > hi {
		return 0, configErrorf("%s %d: out of range (%d..%d)", name, n, lo, hi)
	}
	return n, nil
}

func validateNATSURLs(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, configErrorf("--nats-url is required (or SLIPSTREAM_NATS_URL, or spec.nats.urls in --fold-file)")
	}
	var out []string
	for _, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			return nil, configErrorf("--nats-url %q: empty URL in list", s)
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, configErrorf("--nats-url %q: not a URL", redactURL(raw))
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, configErrorf("--nats-url %q: scheme must be nats, tls, ws or wss", redactURL(raw))
		}
		if u.Hostname() == "" {
			return nil, configErrorf("--nats-url %q: no host", redactURL(raw))
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, configErrorf("--nats-url %q: bad port %q", redactURL(raw), p)
			}
		}
		out = append(out, raw)
	}
	return out, nil
}

// redactURL hides user info (passwords, tokens) of a URL for messages and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "<redacted>@" + raw[i+1:]
		}
		return raw
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	return u.String()
}

func validateBucket(b string) error {
	if b == "" {
		return configErrorf("--bucket is required (or SLIPSTREAM_BUCKET, or spec.bucket in --fold-file)")
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return configErrorf("--bucket %q: invalid character %q (allowed: letters, digits, _ and -)", b, r)
		}
	}
	return nil
}

// validKeyChar reports whether r may appear in a NATS KV key.
func validKeyChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '-' || r == '_' || r == '/' || r == '=' || r == '.'
}

func validatePrefixes(ps []string) ([]string, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	out := append([]string(nil), ps...)
	for _, p := range out {
		if p == "" {
			return nil, configErrorf("--prefix: empty prefix (omit --prefix to fold the whole bucket)")
		}
		for _, r := range p {
			if !validKeyChar(r) {
				return nil, configErrorf("--prefix %q: invalid character %q (allowed: letters, digits, - _ / = .)", p, r)
			}
		}
		if !strings.HasSuffix(p, ".") {
			return nil, configErrorf("--prefix %q: must end with \".\" (prefixes match whole key tokens, e.g. %q)", p, p+".")
		}
		if strings.HasPrefix(p, ".") || strings.Contains(p, "..") {
			return nil, configErrorf("--prefix %q: empty token", p)
		}
	}
	sort.Strings(out)
	for i := 1; i < len(out); i++ {
		if out[i] == out[i-1] {
			return nil, configErrorf("--prefix %q given twice", out[i])
		}
	}
	for i := range out {
		for j := range out {
			if i != j && strings.HasPrefix(out[j], out[i]) {
				return nil, configErrorf("--prefix %q and --prefix %q overlap (%q is inside %q); keep only %q", out[i], out[j], out[j], out[i], out[i])
			}
		}
	}
	return out, nil
}

func validateDataDir(d string) error {
	if d == "" {
		return configErrorf("--data-dir is required (or SLIPSTREAM_DATA_DIR)")
	}
	fi, err := os.Stat(d)
	switch {
	case err == nil && !fi.IsDir():
		return configErrorf("--data-dir %q: not a directory", d)
	case err == nil:
		return writableDir(d)
	case errors.Is(err, os.ErrNotExist):
		// It will be created; its parent must exist or be creatable, checked at open.
		parent := filepath.Dir(filepath.Clean(d))
		if pfi, perr := os.Stat(parent); perr == nil && !pfi.IsDir() {
			return configErrorf("--data-dir %q: parent %q is not a directory", d, parent)
		}
		return nil
	default:
		return configErrorf("--data-dir %q: %v", d, err)
	}
}

func writableDir(d string) error {
	f, err := os.CreateTemp(d, ".slipstream-write-check-*")
	if err != nil {
		return configErrorf("--data-dir %q: not writable: %v", d, errors.Unwrap(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

func validateListen(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return configErrorf("--listen %q: want host:port (e.g. %s)", a, DefaultListen)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return configErrorf("--listen %q: bad port %q (0..65535)", a, port)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		for _, r := range host {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
				return configErrorf("--listen %q: bad host %q", a, host)
			}
		}
	}
	return nil
}

func readableFile(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return configErrorf("%s %q: unreadable: %v", name, path, errors.Unwrap(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return configErrorf("%s %q: %v", name, path, err)
	}
	if fi.IsDir() {
		return configErrorf("%s %q: is a directory", name, path)
	}
	if fi.Size() == 0 {
		return configErrorf("%s %q: empty file", name, path)
	}
	return nil
}

// readToken reads the bearer token of --token-file (surrounding whitespace trimmed).
func readToken(path string) (string, error) { return readSecretLine("--token-file", path) }

// validateExport checks the export flags into c.
func (r *rawRun) validateExport(c *Config) error {
	if r.exportURL == "" {
		for name, v := range map[string]string{"--export-interval": r.exportInterval, "--export-schedule": r.exportSchedule} {
			if v != "" {
				return configErrorf("%s needs --export-url", name)
			}
		}
		return nil
	}
	u, err := url.Parse(r.exportURL)
	if err != nil {
		return configErrorf("--export-url: not a URL: %v", redactURL(r.exportURL))
	}
	switch u.Scheme {
	case "file", "s3", "gs", "azblob":
	default:
		return configErrorf("--export-url %q: scheme must be file, s3, gs or azblob", redactURL(r.exportURL))
	}
	if u.User != nil {
		return configErrorf("--export-url %q: credentials in the URL are not supported; use the environment", redactURL(r.exportURL))
	}
	if u.Scheme == "file" && u.Path == "" {
		return configErrorf("--export-url %q: no directory (want file:///absolute/dir)", r.exportURL)
	}
	c.ExportURL = r.exportURL
	if r.exportInterval != "" && r.exportSchedule != "" {
		return configErrorf("--export-interval and --export-schedule: give one, not both")
	}
	if r.exportInterval != "" {
		d, err := time.ParseDuration(r.exportInterval)
		if err != nil {
			return configErrorf("--export-interval %q: not a duration (e.g. 15m)", r.exportInterval)
		}
		if d < time.Second || d > 7*24*time.Hour {
			return configErrorf("--export-interval %s: out of range (1s..168h)", d)
		}
		c.ExportInterval = d
	}
	if r.exportSchedule != "" {
		sched, err := cron.ParseStandard(r.exportSchedule)
		if err != nil {
			return configErrorf("--export-schedule %q: not a cron schedule: %v (want 5 fields like \"*/15 * * * *\", or @hourly, @every 10m)", r.exportSchedule, err)
		}
		c.ExportSchedule, c.ExportCron = r.exportSchedule, sched
	}
	if c.ExportRetain, err = intIn("--export-retain", r.exportRetain, 1, 1000); err != nil {
		return err
	}
	g, err := time.ParseDuration(r.exportGrace)
	if err != nil || g < 0 || g > 30*24*time.Hour {
		return configErrorf("--export-grace %q: want a duration from 0s to 720h", r.exportGrace)
	}
	c.ExportGrace = g
	if err := validateBucket(r.exportLeaseBucket); err != nil {
		return configErrorf("--export-lease-bucket %q: %v", r.exportLeaseBucket, strings.TrimPrefix(err.Error(), "--bucket "))
	}
	c.ExportLeaseBucket = r.exportLeaseBucket
	c.ExportHolder = r.exportHolder
	if c.ExportHolder == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "agent"
		}
		c.ExportHolder = fmt.Sprintf("%s/%d", h, os.Getpid())
	}
	return nil
}
