package agent_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold/backends"
)

// TestBadInputExitsWithSpecificMessage runs the binary with every kind of invalid input:
// each exits at once with the documented code and a message naming the problem, never a
// panic.
func TestBadInputExitsWithSpecificMessage(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, nil)
	notFold := t.TempDir()
	writeFile(t, filepath.Join(notFold, "junk"), []byte("x"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	memFold := t.TempDir()
	s, err := backends.Open(memFold, backends.Config{Backend: "memory"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ok := []string{"run", "--nats-url", "nats://127.0.0.1:1", "--bucket", "b", "--data-dir", dir}
	cases := []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"no command", nil, nil, 2, "missing command"},
		{"unknown command", []string{"serve"}, nil, 2, `unknown command "serve"`},
		{"unknown flag", append(ok, "--nats", "x"), nil, 2, "flag provided but not defined: -nats"},
		{"unknown backend", append(ok, "--backend", "rocksdb"), nil, 2, `unknown backend`},
		{"bad listen", append(ok, "--listen", "localhost"), nil, 2, "want host:port"},
		{"listen in use", append(ok, "--listen", busy), nil, 2, "address already in use"},
		{"missing bucket", []string{"run", "--nats-url", "nats://h:1", "--data-dir", dir}, nil, 2, "--bucket is required"},
		{"missing nats url", []string{"run", "--bucket", "b", "--data-dir", dir}, nil, 2, "--nats-url is required"},
		{"missing data dir", []string{"run", "--nats-url", "nats://h:1", "--bucket", "b"}, nil, 2, "--data-dir is required"},
		{"overlapping prefixes", append(ok, "--prefix", "route.", "--prefix", "route.eu."), nil, 2, "overlap"},
		{"unreadable creds", append(ok, "--creds-file", filepath.Join(dir, "missing.creds")), nil, 2, "--creds-file"},
		{"empty creds", append(ok, "--creds-file", empty), nil, 2, "empty file"},
		{"bad env", ok, []string{"SLIPSTREAM_BATCH_MAX=lots"}, 2, "--batch-max \"lots\": not an integer"},
		{"export schedule", append(ok, "--export-url", "s3://b", "--export-schedule", "every day"), nil, 2, "not a cron schedule"},
		{"export interval without url", append(ok, "--export-interval", "1m"), nil, 2, "--export-interval needs --export-url"},
		{"fold file missing", append(ok, "--fold-file", filepath.Join(dir, "none.yaml")), nil, 2, "--fold-file"},
		{"backend mismatch", []string{"run", "--nats-url", "nats://127.0.0.1:1", "--bucket", "b", "--data-dir", memFold, "--backend", "pebble"}, nil, 2, "holds a memory fold"},
		{"dump without dir", []string{"dump"}, nil, 2, "--data-dir is required"},
		{"dump not a fold", []string{"dump", "--data-dir", notFold}, nil, 3, "no fold store"},
		{"inspect missing dir", []string{"inspect", "--data-dir", filepath.Join(dir, "nope")}, nil, 2, "does not exist (no fold there yet)"},
		{"verify extra arg", []string{"verify", "--data-dir", dir, "extra"}, nil, 2, "unexpected argument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := harness.RunAgent(t, c.env, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d with %q", code, stderr, c.code, c.want)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
				t.Fatalf("panicked: %s", stderr)
			}
		})
	}
	if code, out, _ := harness.RunAgent(t, nil, "run", "--help"); code != 0 || !strings.Contains(out, "SLIPSTREAM_NATS_URL") || !strings.Contains(out, "Exit codes") {
		t.Fatalf("run --help: exit %d\n%s", code, out)
	}
	if code, out, _ := harness.RunAgent(t, nil, "help"); code != 0 || !strings.Contains(out, "/v1/watch") {
		t.Fatalf("help: exit %d\n%s", code, out)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
