package agent

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"

	"github.com/slipstream-dev/slipstream/pkg/export"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// ExportSummary is the JSON printed by `agent export`.
type ExportSummary struct {
	Object          string   `json:"object"`
	Location        string   `json:"location"`
	Bucket          string   `json:"bucket"`
	Prefixes        []string `json:"prefixes,omitempty"`
	Cursor          uint64   `json:"cursor"`
	Keys            uint64   `json:"keys"`
	Tombstones      uint64   `json:"tombstones"`
	Bytes           int64    `json:"bytes"`
	Checksum        uint32   `json:"checksum"`
	DurationSeconds float64  `json:"durationSeconds"`
	Pruned          []string `json:"pruned,omitempty"`
}

// ImportSummary is the JSON printed by `agent import`.
type ImportSummary struct {
	Object     string      `json:"object"`
	Source     string      `json:"source"`
	Bucket     string      `json:"bucket"`
	Prefixes   []string    `json:"prefixes,omitempty"`
	Backend    string      `json:"backend"`
	DataDir    string      `json:"dataDir"`
	Cursor     uint64      `json:"cursor"`
	Keys       uint64      `json:"keys"`
	Tombstones uint64      `json:"tombstones"`
	Bytes      int64       `json:"bytes"`
	Rejected   []Rejection `json:"rejected,omitempty"`
}

// Rejection is an export import skipped, and why.
type Rejection struct {
	Object string `json:"object"`
	Error  string `json:"error"`
}

const exportHelp = `Usage: agent export --data-dir DIR --to URL --bucket B [--prefix P ...] [--retain N]

Write a consistent snapshot of the fold in DIR as one export object under URL
(a gocloud.dev/blob URL: file:///dir, s3://bucket?endpoint=...&region=..., gs://, azblob://;
credentials from the environment, never from the URL) and print a JSON summary.
--bucket and --prefix name the NATS KV bucket and scope the fold mirrors (they are recorded
in the export and checked by import). The agent must not be running on DIR.
`

const importHelp = `Usage: agent import --from URL --data-dir DIR --bucket B [--prefix P ...] [--name OBJECT] [--backend pebble|memory] [--force]

Seed the fold in DIR from the newest valid export of bucket B under URL (or the export
named by --name, "B/<name>.slex" as printed by agent export): the export is verified in a
staging directory next to DIR and only then swapped into place. An invalid export (damaged,
foreign, future version) is reported and the next newest is tried. DIR must be empty or
missing unless --force (which replaces the fold in it). Prints a JSON summary.
`

// exportFlags are the flags shared by export and import.
type exportFlags struct {
	fs       *flag.FlagSet
	dataDir  string
	url      string
	bucket   string
	prefixes []string
}

func newExportFlags(cmd, urlFlag, urlHelp, help string, stderr io.Writer) *exportFlags {
	f := &exportFlags{fs: flag.NewFlagSet("agent "+cmd, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.dataDir, "data-dir", "", "directory of the fold (required; env SLIPSTREAM_DATA_DIR)")
	f.fs.StringVar(&f.url, urlFlag, "", urlHelp)
	f.fs.StringVar(&f.bucket, "bucket", "", "the NATS KV bucket the fold mirrors (required; env SLIPSTREAM_BUCKET)")
	f.fs.Var(listFlag{&f.prefixes}, "prefix", "the fold's scope: a key prefix ending in \".\" (repeatable); default: whole bucket")
	f.fs.Usage = func() {
		fmt.Fprint(stderr, help+"\nFlags:\n")
		printFlags(f.fs, false)
		fmt.Fprint(stderr, exitCodeHelp)
	}
	return f
}

// parse parses args; a non-negative code means "exit with it".
func (f *exportFlags) parse(args []string, getenv func(string) (string, bool), urlFlag string, stderr io.Writer) int {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(stderr, "error: unexpected argument %q: %s takes only flags\n", f.fs.Arg(0), f.fs.Name())
		return ExitUsage
	}
	for name, p := range map[string]*string{"data-dir": &f.dataDir, "bucket": &f.bucket} {
		if *p == "" {
			if v, ok := getenv(envName(name)); ok {
				*p = v
			}
		}
	}
	switch {
	case f.dataDir == "":
		fmt.Fprintln(stderr, "error: --data-dir is required (or SLIPSTREAM_DATA_DIR)")
		return ExitUsage
	case f.url == "":
		fmt.Fprintf(stderr, "error: --%s is required: the export location URL (e.g. file:///var/lib/slipstream/exports)\n", urlFlag)
		return ExitUsage
	case f.bucket == "":
		fmt.Fprintln(stderr, "error: --bucket is required (or SLIPSTREAM_BUCKET): the NATS KV bucket the fold mirrors")
		return ExitUsage
	}
	if err := validateBucket(f.bucket); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return ExitUsage
	}
	ps, err := validatePrefixes(f.prefixes)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return ExitUsage
	}
	f.prefixes = ps
	return -1
}

// locationExit maps an error opening or using a location to an exit code.
func locationExit(err error) int {
	if errors.Is(err, export.ErrLocation) {
		return ExitUsage
	}
	return ExitFailure
}

func mainExport(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	f := newExportFlags("export", "to", "export location URL (required)", exportHelp, stderr)
	retain := f.fs.Int("retain", 0, "after the export, delete all but the N newest exports of the bucket (older than an hour); 0 keeps all")
	if code := f.parse(args, getenv, "to", stderr); code >= 0 {
		return code
	}
	if *retain < 0 {
		fmt.Fprintf(stderr, "error: --retain %d: want 0 (keep all) or more\n", *retain)
		return ExitUsage
	}
	if err := existingDir(f.dataDir); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return ExitUsage
	}
	loc, err := export.OpenLocation(ctx, f.url)
	if err != nil {
		fmt.Fprintf(stderr, "error: --to: %v\n", err)
		return locationExit(err)
	}
	defer loc.Close()
	backend, err := detectBackend(f.dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "error: --data-dir %q: %v\n", f.dataDir, err)
		return ExitDataProblem
	}
	s, err := openBackend(f.dataDir, backend)
	if err != nil {
		fmt.Fprintf(stderr, "error: open %s fold in %q: %v\n", backend, f.dataDir, err)
		if errors.Is(err, fold.ErrCorrupted) || errors.Is(err, fold.ErrUnknownBackend) {
			return ExitDataProblem
		}
		return ExitFailure
	}
	defer s.Close()
	ret := export.Retention{Keep: math.MaxInt32}
	if *retain > 0 {
		ret = export.Retention{Keep: *retain, Grace: export.DefaultRetention.Grace}
	}
	ex, err := export.NewExporter(export.ExporterConfig{
		Location:  loc,
		Meta:      export.Meta{Bucket: f.bucket, Scope: kv.Scope{Prefixes: f.prefixes}, Backend: backend},
		Retention: ret,
	})
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return ExitUsage
	}
	res, err := ex.Export(ctx, s)
	if err != nil && res.Object.Key == "" {
		fmt.Fprintf(stderr, "error: %v\n", err)
		if errors.Is(err, export.ErrNotExportable) {
			return ExitDataProblem
		}
		return locationExit(err)
	}
	out := ExportSummary{
		Object: res.Object.Key, Location: loc.String(), Bucket: f.bucket, Prefixes: f.prefixes,
		Cursor: res.Summary.Header.Cursor, Keys: res.Summary.Header.Live, Tombstones: res.Summary.Header.Tombstones,
		Bytes: res.Summary.Bytes, Checksum: res.Summary.Checksum, DurationSeconds: res.Duration.Seconds(),
	}
	for _, o := range res.Pruned {
		out.Pruned = append(out.Pruned, o.Key)
	}
	if jerr := json.NewEncoder(stdout).Encode(out); jerr != nil {
		return ExitFailure
	}
	if err != nil { // uploaded, but retention failed
		fmt.Fprintf(stderr, "error: export uploaded, retention failed: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

func mainImport(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	f := newExportFlags("import", "from", "export location URL (required)", importHelp, stderr)
	name := f.fs.String("name", "", "import this export (\"<bucket>/<name>.slex\", or just the name) instead of the newest valid one")
	backend := f.fs.String("backend", DefaultBackend, "backend of the fold to create: pebble or memory")
	force := f.fs.Bool("force", false, "replace the fold in a non-empty --data-dir")
	if code := f.parse(args, getenv, "from", stderr); code >= 0 {
		return code
	}
	switch *backend {
	case "pebble", "memory":
	default:
		fmt.Fprintf(stderr, "error: --backend %q: unknown backend (want pebble or memory)\n", *backend)
		return ExitUsage
	}
	object := *name
	if object != "" && !strings.Contains(object, "/") {
		object = f.bucket + "/" + object
	}
	if object != "" {
		o, ok := export.ParseKey(object)
		if !ok {
			fmt.Fprintf(stderr, "error: --name %q: not an export name (want <bucket>/<cursor>-<created>-<random>%s)\n", *name, export.Extension)
			return ExitUsage
		}
		if o.Bucket != f.bucket {
			fmt.Fprintf(stderr, "error: --name %q: an export of bucket %q, not --bucket %q\n", *name, o.Bucket, f.bucket)
			return ExitUsage
		}
	}
	if code := checkImportDir(f.dataDir, *force, stderr); code >= 0 {
		return code
	}
	loc, err := export.OpenLocation(ctx, f.url)
	if err != nil {
		fmt.Fprintf(stderr, "error: --from: %v\n", err)
		return locationExit(err)
	}
	defer loc.Close()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	seeder, err := export.NewSeeder(export.SeedConfig{
		Location: loc, Bucket: f.bucket, Scope: kv.Scope{Prefixes: f.prefixes},
		Dir: f.dataDir, Open: export.Backend(backends.Config{Backend: *backend}),
		Object: object, Logger: log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return ExitUsage
	}
	// With --force over a fold, hold it open (its lock) until the swap: an agent running on
	// the directory makes this fail instead of having its fold replaced under it.
	var old fold.Store
	if held, derr := detectBackend(f.dataDir); derr == nil {
		if old, err = openBackend(f.dataDir, held); err != nil {
			fmt.Fprintf(stderr, "error: --data-dir %q: open the fold to replace: %v (is an agent running on it?)\n", f.dataDir, err)
			return ExitFailure
		}
		defer old.Close()
	}
	st, res, err := seeder.Seed(ctx, old)
	if err != nil {
		for _, r := range res.Rejected {
			fmt.Fprintf(stderr, "rejected %s: %v\n", r.Object.Key, r.Err)
		}
		fmt.Fprintf(stderr, "error: import: %v\n", err)
		if errors.Is(err, export.ErrNotFound) || errors.Is(err, export.ErrInvalidExport) {
			return ExitDataProblem
		}
		return locationExit(err)
	}
	if cerr := st.Close(); cerr != nil {
		fmt.Fprintf(stderr, "error: close imported fold: %v\n", cerr)
		return ExitFailure
	}
	h := res.Summary.Header
	out := ImportSummary{
		Object: res.Object.Key, Source: res.Source, Bucket: f.bucket, Prefixes: f.prefixes,
		Backend: *backend, DataDir: f.dataDir, Cursor: h.Cursor, Keys: h.Live, Tombstones: h.Tombstones,
		Bytes: res.Summary.Bytes,
	}
	for _, r := range res.Rejected {
		out.Rejected = append(out.Rejected, Rejection{Object: r.Object.Key, Error: r.Err.Error()})
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		return ExitFailure
	}
	return ExitOK
}

// checkImportDir refuses a data directory that is not a directory, or not empty without
// force; a non-negative code means "exit with it".
func checkImportDir(dir string, force bool, stderr io.Writer) int {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return -1
	case err != nil:
		fmt.Fprintf(stderr, "error: --data-dir %q: %v\n", dir, err)
		return ExitUsage
	case !fi.IsDir():
		fmt.Fprintf(stderr, "error: --data-dir %q: not a directory\n", dir)
		return ExitUsage
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintf(stderr, "error: --data-dir %q: %v\n", dir, err)
		return ExitUsage
	}
	if len(ents) > 0 && !force {
		what := fmt.Sprintf("%d entries", len(ents))
		if b, err := detectBackend(dir); err == nil {
			what = "a " + b + " fold"
		}
		fmt.Fprintf(stderr, "error: --data-dir %q is not empty (it holds %s): pass --force to replace it\n", dir, what)
		return ExitUsage
	}
	return -1
}
