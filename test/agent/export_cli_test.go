package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

type exportSummary struct {
	Object     string `json:"object"`
	Location   string `json:"location"`
	Bucket     string `json:"bucket"`
	Cursor     uint64 `json:"cursor"`
	Keys       uint64 `json:"keys"`
	Tombstones uint64 `json:"tombstones"`
	Bytes      int64  `json:"bytes"`
}

type importSummary struct {
	Object   string `json:"object"`
	Source   string `json:"source"`
	Backend  string `json:"backend"`
	Cursor   uint64 `json:"cursor"`
	Keys     uint64 `json:"keys"`
	Rejected []struct {
		Object string `json:"object"`
		Error  string `json:"error"`
	} `json:"rejected"`
}

// foldBucket runs an agent on bucket until it has caught up, then stops it (SIGTERM) so the
// fold directory can be used offline.
func foldBucket(t *testing.T, n *proctest.NATS, b *kv.Bucket, bucket, dir string) {
	t.Helper()
	a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", bucket, "--data-dir", dir)
	a.WaitCaughtUp(t, b, 20*time.Second)
	a.Terminate(t)
}

func putN(t *testing.T, b *kv.Bucket, prefix string, n int) {
	t.Helper()
	for i := range n {
		if _, err := b.Put(context.Background(), fmt.Sprintf("%s.%03d", prefix, i), []byte(fmt.Sprintf("value-%s-%d", prefix, i))); err != nil {
			t.Fatal(err)
		}
	}
}

func runExport(t *testing.T, dir, url, bucket string) exportSummary {
	t.Helper()
	code, out, errOut := harness.RunAgent(t, nil, "export", "--data-dir", dir, "--to", url, "--bucket", bucket)
	if code != 0 {
		t.Fatalf("agent export: exit %d: %s", code, errOut)
	}
	var s exportSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("agent export output %q: %v", out, err)
	}
	return s
}

// TestExportImportRoundTrip exports a fold to file://, imports it into an empty directory
// (newest and by name, into either backend) and checks the imported fold equals the source
// fold exactly; a second export at a later cursor is what import picks by default.
func TestExportImportRoundTrip(t *testing.T) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "orders")
	putN(t, b, "order", 50)
	if _, err := b.Delete(context.Background(), "order.007"); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	foldBucket(t, n, b, "orders", src)
	exports := t.TempDir()
	url := "file://" + exports

	first := runExport(t, src, url, "orders")
	if first.Bucket != "orders" || first.Keys != 49 || first.Tombstones != 1 || first.Cursor != 51 || first.Bytes == 0 {
		t.Fatalf("export summary: %+v, want bucket orders, 49 keys, 1 tombstone, cursor 51", first)
	}
	if fi, err := os.Stat(filepath.Join(exports, filepath.FromSlash(first.Object))); err != nil || fi.Size() != first.Bytes {
		t.Fatalf("export object %s: %v (size %v, summary %d)", first.Object, err, fi, first.Bytes)
	}
	want := harness.DumpFold(t, src)

	putN(t, b, "late", 5)
	foldBucket(t, n, b, "orders", src)
	second := runExport(t, src, url, "orders")
	if second.Cursor != 56 {
		t.Fatalf("second export cursor %d, want 56", second.Cursor)
	}

	// The newest export, into a memory fold.
	dst := filepath.Join(t.TempDir(), "fold")
	code, out, errOut := harness.RunAgent(t, nil, "import", "--from", url, "--data-dir", dst, "--bucket", "orders", "--backend", "memory")
	if code != 0 {
		t.Fatalf("agent import: exit %d: %s", code, errOut)
	}
	var is importSummary
	if err := json.Unmarshal([]byte(out), &is); err != nil {
		t.Fatal(err)
	}
	if is.Object != second.Object || is.Cursor != 56 || is.Keys != 54 || is.Backend != "memory" || len(is.Rejected) != 0 {
		t.Fatalf("import summary %+v, want object %s at cursor 56 with 54 keys", is, second.Object)
	}
	if err := proctest.Diff(harness.DumpFold(t, src), harness.DumpFold(t, dst)); err != nil {
		t.Fatalf("imported fold != exported fold: %v", err)
	}

	// A named (older) export, into a pebble fold.
	named := filepath.Join(t.TempDir(), "fold")
	code, out, errOut = harness.RunAgent(t, nil, "import", "--from", url, "--data-dir", named, "--bucket", "orders", "--name", first.Object)
	if code != 0 {
		t.Fatalf("agent import --name: exit %d: %s", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &is); err != nil {
		t.Fatal(err)
	}
	if is.Object != first.Object || is.Cursor != 51 {
		t.Fatalf("named import summary %+v, want %s at 51", is, first.Object)
	}
	if err := proctest.Diff(want, harness.DumpFold(t, named)); err != nil {
		t.Fatalf("fold imported by name != first export: %v", err)
	}

	// A non-empty directory is refused without --force and replaced with it.
	code, _, errOut = harness.RunAgent(t, nil, "import", "--from", url, "--data-dir", named, "--bucket", "orders")
	if code != 2 || !strings.Contains(errOut, "is not empty") || !strings.Contains(errOut, "--force") {
		t.Fatalf("import into a non-empty dir: exit %d: %s; want 2 naming --force", code, errOut)
	}
	code, _, errOut = harness.RunAgent(t, nil, "import", "--from", url, "--data-dir", named, "--bucket", "orders", "--force")
	if code != 0 {
		t.Fatalf("import --force: exit %d: %s", code, errOut)
	}
	if err := proctest.Diff(harness.DumpFold(t, src), harness.DumpFold(t, named)); err != nil {
		t.Fatalf("fold after import --force != newest export: %v", err)
	}
	// --force never replaces a fold an agent is running on.
	running := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "orders", "--data-dir", named)
	running.WaitCaughtUp(t, b, 20*time.Second)
	code, _, errOut = harness.RunAgent(t, nil, "import", "--from", url, "--data-dir", named, "--bucket", "orders", "--force", "--name", first.Object)
	if code != 1 || !strings.Contains(errOut, "is an agent running on it") {
		t.Fatalf("import --force under a running agent: exit %d: %s; want 1", code, errOut)
	}
	if st, err := running.Status(); err != nil || st.Cursor != 56 || st.Keys != 54 {
		t.Fatalf("running agent after a refused import: %+v, %v", st, err)
	}
}

// TestImportSkipsCorruptedExport flips a byte in the newest export: import rejects it with
// the checksum error, uses the next newest, and never leaves the damaged one as the fold.
func TestImportSkipsCorruptedExport(t *testing.T) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "cfg")
	putN(t, b, "cfg", 20)
	src := t.TempDir()
	foldBucket(t, n, b, "cfg", src)
	exports := t.TempDir()
	url := "file://" + exports
	older := runExport(t, src, url, "cfg")
	want := harness.DumpFold(t, src)
	putN(t, b, "more", 10)
	foldBucket(t, n, b, "cfg", src)
	newest := runExport(t, src, url, "cfg")

	path := filepath.Join(exports, filepath.FromSlash(newest.Object))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(t.TempDir(), "fold")
	code, out, errOut := harness.RunAgent(t, nil, "import", "--from", url, "--data-dir", dst, "--bucket", "cfg")
	if code != 0 {
		t.Fatalf("agent import: exit %d: %s", code, errOut)
	}
	var is importSummary
	if err := json.Unmarshal([]byte(out), &is); err != nil {
		t.Fatal(err)
	}
	if is.Object != older.Object || is.Cursor != older.Cursor {
		t.Fatalf("imported %s at %d, want the older valid export %s at %d", is.Object, is.Cursor, older.Object, older.Cursor)
	}
	if len(is.Rejected) != 1 || is.Rejected[0].Object != newest.Object || !strings.Contains(is.Rejected[0].Error, "checksum mismatch") {
		t.Fatalf("rejected %+v, want %s rejected for a checksum mismatch", is.Rejected, newest.Object)
	}
	if err := proctest.Diff(want, harness.DumpFold(t, dst)); err != nil {
		t.Fatalf("imported fold != older export: %v", err)
	}

	// Only the damaged export, by name: exit 3 with the specific error, nothing imported.
	bad := filepath.Join(t.TempDir(), "fold")
	code, _, errOut = harness.RunAgent(t, nil, "import", "--from", url, "--data-dir", bad, "--bucket", "cfg", "--name", newest.Object)
	if code != 3 || !strings.Contains(errOut, "checksum mismatch") {
		t.Fatalf("import of the damaged export by name: exit %d: %s; want 3 and checksum mismatch", code, errOut)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("a rejected import left %s behind: %v", bad, err)
	}
}

// TestExportImportBadInput: bad URLs, directories and names exit non-zero with a message
// naming the problem.
func TestExportImportBadInput(t *testing.T) {
	dir := t.TempDir()
	notFold := t.TempDir()
	writeFile(t, filepath.Join(notFold, "junk"), []byte("x"))
	exports := "file://" + t.TempDir()
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"export no to", []string{"export", "--data-dir", dir, "--bucket", "b"}, 2, "--to is required"},
		{"export no bucket", []string{"export", "--data-dir", dir, "--to", exports}, 2, "--bucket is required"},
		{"export bad scheme", []string{"export", "--data-dir", notFold, "--to", "nope://x", "--bucket", "b"}, 2, "invalid export location"},
		{"export not a fold", []string{"export", "--data-dir", notFold, "--to", exports, "--bucket", "b"}, 3, "no fold store"},
		{"export missing dir", []string{"export", "--data-dir", filepath.Join(dir, "nope"), "--to", exports, "--bucket", "b"}, 2, "does not exist (no fold there yet)"},
		{"export creds in url", []string{"export", "--data-dir", dir, "--to", "s3://user:secret@bucket", "--bucket", "b"}, 2, "credentials in the URL"},
		{"import bad scheme", []string{"import", "--from", "nope://x", "--data-dir", filepath.Join(dir, "f"), "--bucket", "b"}, 2, "invalid export location"},
		{"import bad name", []string{"import", "--from", exports, "--data-dir", filepath.Join(dir, "f"), "--bucket", "b", "--name", "x.slex"}, 2, "not an export name"},
		{"import nothing there", []string{"import", "--from", exports, "--data-dir", filepath.Join(dir, "f"), "--bucket", "b"}, 3, "no export found"},
		{"import bad backend", []string{"import", "--from", exports, "--data-dir", filepath.Join(dir, "f"), "--bucket", "b", "--backend", "x"}, 2, "unknown backend"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := harness.RunAgent(t, nil, c.args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut, c.code, c.want)
			}
			if strings.Contains(errOut, "secret") || strings.Contains(errOut, "panic") {
				t.Fatalf("stderr leaks a credential or panics: %q", errOut)
			}
		})
	}
}
