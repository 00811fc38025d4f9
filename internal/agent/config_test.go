package agent

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/fold/pebble"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseRunDefaultsEnvAndPrecedence(t *testing.T) {
	dir := t.TempDir()
	c, err := ParseRun([]string{"--nats-url", "nats://127.0.0.1:4222", "--bucket", "cfg", "--data-dir", dir}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || c.Backend != "pebble" || c.BatchWindow != 10*time.Millisecond || c.BatchMax != 100 || c.Prefixes != nil {
		t.Fatalf("defaults: %+v", c)
	}
	if sc := c.storeConfig(); sc.Pebble.Sync != pebble.SyncEveryApply || sc.Pebble.CacheSize != 0 {
		t.Fatalf("default pebble tuning: %+v", sc.Pebble)
	}
	c, err = ParseRun([]string{"--nats-url", "nats://127.0.0.1:4222", "--bucket", "cfg", "--data-dir", dir, "--pebble-sync=false", "--pebble-cache-size", "134217728"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if sc := c.storeConfig(); sc.Backend != "pebble" || sc.Pebble.Sync != pebble.SyncNone || sc.Pebble.CacheSize != 128<<20 {
		t.Fatalf("pebble tuning from flags: %+v", sc)
	}
	c, err = ParseRun([]string{"--bucket", "flagwins", "--prefix", "b."}, env(map[string]string{
		"SLIPSTREAM_NATS_URL": "nats://a:1,tls://b:2", "SLIPSTREAM_BUCKET": "envloses", "SLIPSTREAM_DATA_DIR": dir,
		"SLIPSTREAM_PREFIX": "ignored.", "SLIPSTREAM_BACKEND": "memory", "SLIPSTREAM_BATCH_MAX": "7",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Bucket != "flagwins" || !reflect.DeepEqual(c.NATSURLs, []string{"nats://a:1", "tls://b:2"}) || c.Backend != "memory" || c.BatchMax != 7 || !reflect.DeepEqual(c.Prefixes, []string{"b."}) {
		t.Fatalf("precedence: %+v", c)
	}
	c, err = ParseRun([]string{"--data-dir", dir}, env(map[string]string{"SLIPSTREAM_PREFIX": "x., y."}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--nats-url is required") {
		t.Fatalf("missing nats url: %v", err)
	}
	_ = c
}

const manifest = `apiVersion: slipstream.dev/v1alpha1
kind: KVFold
metadata:
  name: edge-config
spec:
  nats:
    urls: ["nats://n1:4222", "nats://n2:4222"]
  bucket: config
  scope:
    prefixes: ["route.", "cert."]
  backend:
    type: memory
    pebble: {sync: false, cacheSize: 128Mi}
  batch:
    window: 25ms
    maxUpdates: 500
  placement:
    nodeSelector: {edge: "true"}
`

func TestParseRunFoldFile(t *testing.T) {
	dir := t.TempDir()
	ff := filepath.Join(dir, "kvfold.yaml")
	if err := os.WriteFile(ff, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ParseRun([]string{"--fold-file", ff, "--data-dir", dir, "--batch-max", "9"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{NATSURLs: []string{"nats://n1:4222", "nats://n2:4222"}, Bucket: "config", Prefixes: []string{"cert.", "route."},
		Backend: "memory", PebbleSync: false, PebbleCache: 128 << 20, DataDir: dir, Listen: DefaultListen, BatchWindow: 25 * time.Millisecond, BatchMax: 9,
		RateLimit: DefaultRateLimit, MaxWatchers: DefaultMaxWatchers, WatchRing: DefaultWatchRing, LogLevel: "info", LogFormat: "text", FoldFile: ff}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("fold file:\n got %+v\nwant %+v", c, want)
	}
}

// TestParseRunRejects is the table of invalid configurations: each gets a ConfigError whose
// message names the problem.
func TestParseRunRejects(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeFile(t, file, []byte("x"))
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, nil)
	badYAML := filepath.Join(dir, "bad.yaml")
	writeFile(t, badYAML, []byte("apiVersion: [unclosed"))
	wrongKind := filepath.Join(dir, "kind.yaml")
	writeFile(t, wrongKind, []byte("apiVersion: v1\nkind: ConfigMap\n"))
	exportFold := filepath.Join(dir, "export.yaml")
	writeFile(t, exportFold, []byte("apiVersion: slipstream.dev/v1alpha1\nkind: KVFold\nspec:\n  export:\n    url: s3://x\n    schedule: every monday\n"))
	badWindow := filepath.Join(dir, "window.yaml")
	writeFile(t, badWindow, []byte("apiVersion: slipstream.dev/v1alpha1\nkind: KVFold\nspec:\n  batch:\n    window: soon\n"))

	base := []string{"--nats-url", "nats://127.0.0.1:4222", "--bucket", "b", "--data-dir", dir}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, nil, "flag provided but not defined: -bogus"},
		{"positional", []string{"extra"}, nil, `unexpected argument "extra"`},
		{"no nats url", []string{"--bucket", "b", "--data-dir", dir}, nil, "--nats-url is required"},
		{"bad scheme", []string{"--nats-url", "http://x:1"}, nil, "scheme must be nats, tls, ws or wss"},
		{"no host", []string{"--nats-url", "nats://:4222"}, nil, "no host"},
		{"bad port", []string{"--nats-url", "nats://h:99999"}, nil, `bad port "99999"`},
		{"empty url in list", []string{"--nats-url", "nats://a:1,,nats://b:2"}, nil, "empty URL in list"},
		{"password not echoed", []string{"--nats-url", "http://user:hunter2@h:1"}, nil, "redacted"},
		{"no bucket", []string{"--nats-url", "nats://h:1", "--data-dir", dir}, nil, "--bucket is required"},
		{"bad bucket", []string{"--bucket", "a.b"}, nil, `invalid character '.'`},
		{"unknown backend", []string{"--backend", "rocksdb"}, nil, `--backend "rocksdb": unknown backend`},
		{"bad pebble sync", []string{"--nats-url", "nats://h:1", "--bucket", "b", "--data-dir", dir, "--pebble-sync", "sometimes"}, nil, `--pebble-sync "sometimes": want true or false`},
		{"pebble cache not bytes", []string{"--nats-url", "nats://h:1", "--bucket", "b", "--data-dir", dir, "--pebble-cache-size", "64Mi"}, nil, `--pebble-cache-size "64Mi": not a number of bytes`},
		{"pebble cache too small", []string{"--nats-url", "nats://h:1", "--bucket", "b", "--data-dir", dir, "--pebble-cache-size", "1024"}, nil, "--pebble-cache-size 1024: out of range (1 MiB..64 GiB)"},
		{"no data dir", []string{"--nats-url", "nats://h:1", "--bucket", "b"}, nil, "--data-dir is required"},
		{"data dir is file", []string{"--data-dir", file}, nil, "not a directory"},
		{"listen no port", []string{"--listen", "127.0.0.1"}, nil, "want host:port"},
		{"listen bad port", []string{"--listen", "127.0.0.1:http2"}, nil, `bad port "http2"`},
		{"listen bad host", []string{"--listen", "bad host:80"}, nil, "bad host"},
		{"prefix no dot", []string{"--prefix", "route"}, nil, `must end with "."`},
		{"prefix bad char", []string{"--prefix", "a b."}, nil, "invalid character"},
		{"prefix empty token", []string{"--prefix", "a..b."}, nil, "empty token"},
		{"prefix overlap", []string{"--prefix", "a.", "--prefix", "a.b."}, nil, "overlap"},
		{"prefix twice", []string{"--prefix", "a.", "--prefix", "a."}, nil, "given twice"},
		{"prefix overlap env", nil, map[string]string{"SLIPSTREAM_PREFIX": "x.,x.y."}, "overlap"},
		{"batch window", []string{"--batch-window", "fast"}, nil, "not a duration"},
		{"batch window range", []string{"--batch-window", "1m"}, nil, "out of range"},
		{"batch max", []string{"--batch-max", "0"}, nil, "--batch-max 0: out of range"},
		{"batch max int", []string{"--batch-max", "ten"}, nil, "not an integer"},
		{"creds unreadable", []string{"--creds-file", filepath.Join(dir, "nope.creds")}, nil, "--creds-file"},
		{"creds empty", []string{"--creds-file", empty}, nil, "empty file"},
		{"creds dir", []string{"--creds-file", dir}, nil, "is a directory"},
		{"token empty", []string{"--token-file", empty}, nil, "--token-file"},
		{"export url scheme", []string{"--export-url", "http://bucket"}, nil, "scheme must be file, s3, gs or azblob"},
		{"export url creds", []string{"--export-url", "s3://key:hunter2@bucket"}, nil, "credentials in the URL"},
		{"export interval without url", nil, map[string]string{"SLIPSTREAM_EXPORT_INTERVAL": "1h"}, "--export-interval needs --export-url"},
		{"export interval", []string{"--export-url", "s3://b", "--export-interval", "often"}, nil, "--export-interval \"often\": not a duration"},
		{"export interval range", []string{"--export-url", "s3://b", "--export-interval", "1ms"}, nil, "out of range"},
		{"export schedule", []string{"--export-url", "s3://b", "--export-schedule", "61 * * * *"}, nil, "--export-schedule \"61 * * * *\": not a cron schedule"},
		{"export both", []string{"--export-url", "s3://b", "--export-schedule", "@hourly", "--export-interval", "1h"}, nil, "give one, not both"},
		{"export retain", []string{"--export-url", "s3://b", "--export-retain", "0"}, nil, "--export-retain 0: out of range"},
		{"export grace", []string{"--export-url", "s3://b", "--export-grace", "-1s"}, nil, "--export-grace"},
		{"export lease bucket", []string{"--export-url", "s3://b", "--export-lease-bucket", "a.b"}, nil, "--export-lease-bucket"},
		{"rate limit", []string{"--rate-limit", "-1"}, nil, "--rate-limit"},
		{"log level", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"fold file missing", []string{"--fold-file", filepath.Join(dir, "none.yaml")}, nil, "--fold-file"},
		{"fold file yaml", []string{"--fold-file", badYAML}, nil, "not a valid KVFold manifest"},
		{"fold file kind", []string{"--fold-file", wrongKind}, nil, "want slipstream.dev/v1alpha1/KVFold"},
		{"fold file export", []string{"--fold-file", exportFold}, nil, "--export-schedule \"every monday\": not a cron schedule"},
		{"fold file window", []string{"--fold-file", badWindow}, nil, "spec.batch.window"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string(nil), base...), c.args...)
			if c.name == "no nats url" || c.name == "no bucket" || c.name == "no data dir" {
				args = c.args
			}
			_, err := ParseRun(args, env(c.env), io.Discard)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a ConfigError", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks a password: %q", err)
			}
		})
	}
}

func TestParseRunHelp(t *testing.T) {
	var out strings.Builder
	_, err := ParseRun([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, errHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range []string{"--nats-url", "SLIPSTREAM_NATS_URL", "Exit codes", "--fold-file"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("help lacks %q", s)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestParseRunExportFlags(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--nats-url", "nats://127.0.0.1:4222", "--bucket", "b", "--data-dir", dir}
	c, err := ParseRun(append(base, "--export-url", "file:///var/exports", "--export-schedule", "*/15 * * * *", "--export-retain", "7", "--export-holder", "n1"), env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.ExportURL != "file:///var/exports" || c.ExportCron == nil || c.ExportInterval != 0 || c.ExportRetain != 7 ||
		c.ExportHolder != "n1" || c.ExportLeaseBucket != DefaultLeaseBucket || c.ExportGrace != time.Hour {
		t.Fatalf("config %+v", c)
	}
	c, err = ParseRun(base, env(map[string]string{"SLIPSTREAM_EXPORT_URL": "s3://b?region=x", "SLIPSTREAM_EXPORT_INTERVAL": "10m"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.ExportInterval != 10*time.Minute || c.ExportCron != nil || c.ExportRetain != DefaultExportRetain || c.ExportHolder == "" {
		t.Fatalf("config from env %+v", c)
	}
	c, err = ParseRun(base, env(nil), io.Discard)
	if err != nil || c.ExportURL != "" {
		t.Fatalf("no export flags: %+v, %v", c, err)
	}
}
