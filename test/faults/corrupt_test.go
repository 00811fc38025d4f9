package faults_test

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// logBoundaries returns the offsets where the memory backend's log records start
// (docs/memory-log-format.md), and the log's length.
func logBoundaries(t testing.TB, data []byte) []int {
	t.Helper()
	const header = 6 // "PGSS" ++ version:u16le
	out := []int{header}
	for off := header; off < len(data); {
		p := off + 5 // crc:u32 ++ type:u8
		switch data[off+4] {
		case 0x01: // put: key_len:u16 key value_len:u32 value ver_len:u8 ver
			p += 2 + int(binary.LittleEndian.Uint16(data[p:]))
			p += 4 + int(binary.LittleEndian.Uint32(data[p:]))
			p += 1 + int(data[p])
		case 0x02: // delete: key_len:u16 key ver_len:u8 ver
			p += 2 + int(binary.LittleEndian.Uint16(data[p:]))
			p += 1 + int(data[p])
		case 0x03: // cursor: cursor_len:u8 cursor
			p += 1 + int(data[p])
		default:
			t.Fatalf("log record at %d: unknown type %#x", off, data[off+4])
		}
		off = p
		out = append(out, off)
	}
	if out[len(out)-1] != len(data) {
		t.Fatalf("log records end at %d, the log has %d bytes", out[len(out)-1], len(data))
	}
	return out
}

// exportBoundaries returns the offsets where the export's frames and the records inside
// its records frames start (docs/export-format.md).
func exportBoundaries(t testing.TB, data []byte) []int {
	t.Helper()
	out := []int{14} // preamble
	for off := 14; off < len(data); {
		typ, n := data[off], int(binary.LittleEndian.Uint32(data[off+1:]))
		payload := off + 9
		if typ == 'R' {
			for r := payload; r < payload+n; {
				l, k := binary.Uvarint(data[r:])
				r += k + int(l)
				if r < payload+n {
					out = append(out, r)
				}
			}
		}
		off = payload + n + 4
		out = append(out, off)
	}
	return out
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v: %s", src, dst, err, out)
	}
}

// damage names one corruption of a fold directory.
type damage struct {
	name  string
	apply func(t testing.TB, dir string)
	// torn: the damage may be indistinguishable from a torn write (the tail of the log),
	// so verify may accept the shorter fold.
	torn bool
}

// checkDamaged runs `agent verify` on a damaged fold (exit 3 naming the damage, or 0 for
// a torn tail), then repairs it with the agent: it must come up Live at the bucket's last
// sequence with fold == bucket, reporting and setting aside a corrupted store.
func checkDamaged(t *testing.T, b *kv.Bucket, natsURL, backend, src string, d damage, repair bool, extra ...string) (detected bool) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fold")
	copyDir(t, src, dir)
	d.apply(t, dir)
	code, _, errOut := harness.RunAgent(t, nil, "verify", "--data-dir", dir)
	switch {
	case code == 3 && strings.Contains(errOut, "corrupt"):
		detected = true
	case code == 0 && d.torn:
	default:
		t.Fatalf("%s: agent verify exit %d (want 3 naming the corruption%s): %s", d.name, code, map[bool]string{true: " or 0 for a torn tail"}[d.torn], errOut)
	}
	if !repair {
		return detected
	}
	a := harness.StartAgent(t, append([]string{"--nats-url", natsURL, "--bucket", b.Name(), "--data-dir", dir, "--backend", backend}, extra...)...)
	st := a.WaitCaughtUp(t, b, 60*time.Second)
	if detected {
		if !strings.Contains(st.LastError, "corrupted") {
			t.Fatalf("%s: lastError %q does not report the corruption", d.name, st.LastError)
		}
		if moved, _ := filepath.Glob(dir + ".corrupted-*"); len(moved) != 1 {
			t.Fatalf("%s: corrupted store not set aside: %v", d.name, moved)
		}
	}
	compareFold(t, b, a.Fold(t), nil)
	a.Terminate(t)
	return detected
}

func flipAt(off int) func(testing.TB, string) {
	return func(t testing.TB, dir string) {
		t.Helper()
		p := filepath.Join(dir, "fold.log")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data[off] ^= 0x10
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func truncateAt(name string, size int64) func(testing.TB, string) {
	return func(t testing.TB, dir string) {
		t.Helper()
		if err := os.Truncate(filepath.Join(dir, name), size); err != nil {
			t.Fatal(err)
		}
	}
}

// smallFold makes a small fold (a few dozen records, one batch per update) and stops its
// agent cleanly.
func smallFold(t *testing.T, backend string) (*kv.Bucket, *proctest.NATS, string) {
	t.Helper()
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "damage")
	w := startWriter(t, b, "k.", 8, 48, 0)
	w.waitAcked(t, 24, 30*time.Second)
	w.halt()
	dir := filepath.Join(t.TempDir(), "fold")
	a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "damage", "--data-dir", dir, "--backend", backend, "--batch-max", "1")
	a.WaitCaughtUp(t, b, 30*time.Second)
	a.Terminate(t)
	return b, n, dir
}

// TestCorruptMemoryLog truncates a small memory fold's log at every record boundary and
// flips a bit inside every record: every damage is detected by `agent verify` (exit 3
// naming it), except what cannot be told from a torn write at the tail, which loads as an
// older fold; each damaged fold is repaired by the agent from NATS (every fourth one, all
// of them with FAULT_CYCLES >= 400).
func TestCorruptMemoryLog(t *testing.T) {
	b, n, src := smallFold(t, "memory")
	data, err := os.ReadFile(filepath.Join(src, "fold.log"))
	if err != nil {
		t.Fatal(err)
	}
	bounds := logBoundaries(t, data)
	every := max(1, 400/cycles(t, 100))
	var cases, detected, repaired int
	for i, off := range bounds[:len(bounds)-1] {
		// Truncation at a boundary: a shorter, valid log (an older fold or a torn batch).
		d := damage{name: fmt.Sprintf("truncated at record boundary %d (offset %d)", i, off), apply: truncateAt("fold.log", int64(off)), torn: true}
		repair := i%every == 0
		if checkDamaged(t, b, n.URL(), "memory", src, d, repair) {
			detected++
		}
		cases++
		// A bit flip inside the record (its first payload byte after the type).
		last := i == len(bounds)-2
		d = damage{name: fmt.Sprintf("bit flip in record %d (offset %d)", i, off+5), apply: flipAt(off + 5), torn: last}
		if checkDamaged(t, b, n.URL(), "memory", src, d, repair) {
			detected++
		} else if !last {
			t.Fatalf("%s not detected", d.name)
		}
		cases++
		if repair {
			repaired += 2
		}
	}
	d := damage{name: "header flipped", apply: flipAt(1)}
	if !checkDamaged(t, b, n.URL(), "memory", src, d, true) {
		t.Fatal("a damaged header was not detected")
	}
	report(t, "corrupt/memory-log", "records", len(bounds)-1, "damagedFolds", cases+1, "detectedAsCorrupt", detected+1,
		"acceptedAsTornTail", cases-detected, "repairedFromNATS", repaired+1, "served", 0)
}

// TestCorruptPebbleFiles flips bytes in every table file and the MANIFEST of a small
// pebble fold and truncates its WAL: damage to tables and the MANIFEST is detected by
// `agent verify`, and every damaged fold is repaired by the agent from NATS.
func TestCorruptPebbleFiles(t *testing.T) {
	b, n, src := smallFold(t, "pebble")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	var ds []damage
	for _, e := range entries {
		name := e.Name()
		fi, err := e.Info()
		if err != nil || fi.Size() == 0 {
			continue
		}
		switch {
		case strings.HasSuffix(name, ".sst"), strings.HasPrefix(name, "MANIFEST-"):
			off := fi.Size() / 2
			// pebble takes a damaged last MANIFEST record for a torn write, as the memory
			// log does its last record: the fold must still come out right.
			ds = append(ds, damage{name: "bit flip in " + name, torn: strings.HasPrefix(name, "MANIFEST-"), apply: func(t testing.TB, dir string) {
				p := filepath.Join(dir, name)
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				data[off] ^= 0x10
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}})
		case strings.HasSuffix(name, ".log"):
			for _, cut := range []int64{fi.Size() / 3, fi.Size() * 2 / 3} {
				ds = append(ds, damage{name: fmt.Sprintf("%s truncated to %d", name, cut), apply: truncateAt(name, cut), torn: true})
			}
		}
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(ds) == 0 {
		t.Fatalf("no pebble files to damage in %v", names)
	}
	var detected int
	for _, d := range ds {
		if checkDamaged(t, b, n.URL(), "pebble", src, d, true) {
			detected++
		} else if !d.torn {
			t.Fatalf("%s not detected", d.name)
		}
	}
	report(t, "corrupt/pebble", "files", strings.Join(names, ","), "damagedFolds", len(ds), "detectedAsCorrupt", detected,
		"acceptedAsTornTail", len(ds)-detected, "repairedFromNATS", len(ds), "served", 0)
}

// TestCorruptExports damages export objects (truncation at every frame and record
// boundary, bit flips in every frame): `agent import` rejects each one with its reason and
// a non-zero exit; an agent whose store is corrupted and whose newest export is damaged
// seeds from the older, intact export and takes the tail from NATS.
func TestCorruptExports(t *testing.T) {
	b, n, src := smallFold(t, "memory")
	expDir := t.TempDir()
	url := "file://" + expDir
	if code, out, errOut := harness.RunAgent(t, nil, "export", "--data-dir", src, "--to", url, "--bucket", "damage"); code != 0 {
		t.Fatalf("export: exit %d %s %s", code, out, errOut)
	}
	objs := exportObjects(t, expDir)
	if len(objs) != 1 {
		t.Fatalf("export objects: %v", objs)
	}
	good := objs[0]
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	bounds := exportBoundaries(t, data)
	if bounds[len(bounds)-1] != len(data) {
		t.Fatalf("export frames end at %d, the object has %d bytes", bounds[len(bounds)-1], len(data))
	}
	var variants [][]byte
	var names []string
	for _, off := range bounds[:len(bounds)-1] {
		variants = append(variants, data[:off])
		names = append(names, fmt.Sprintf("truncated at %d", off))
	}
	for _, off := range append([]int{0, 9, 13}, bounds[:len(bounds)-1]...) {
		for _, at := range []int{off, off + 5, off + 12} {
			if at < len(data) {
				v := slices.Clone(data)
				v[at] ^= 0x01
				variants = append(variants, v)
				names = append(names, fmt.Sprintf("bit flip at %d", at))
			}
		}
	}
	badDir := t.TempDir()
	rel, err := filepath.Rel(expDir, good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(badDir, rel)), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, v := range variants {
		p := filepath.Join(badDir, rel)
		if err := os.WriteFile(p, v, 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := harness.RunAgent(t, nil, "import", "--from", "file://"+badDir, "--data-dir", filepath.Join(t.TempDir(), "f"), "--bucket", "damage")
		if code == 0 || !strings.Contains(errOut, "export") {
			t.Fatalf("import of an export %s: exit %d, want a rejection naming the reason: %s", names[i], code, errOut)
		}
	}

	// Repair from an export: the newest export is damaged, the store corrupted.
	w := startWriter(t, b, "k.", 8, 48, 0)
	w.waitAcked(t, 10, 30*time.Second)
	w.halt()
	newer := filepath.Join(t.TempDir(), "fold")
	copyDir(t, src, newer)
	a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "damage", "--data-dir", newer, "--backend", "memory")
	a.WaitCaughtUp(t, b, 30*time.Second)
	a.Terminate(t)
	if code, out, errOut := harness.RunAgent(t, nil, "export", "--data-dir", newer, "--to", url, "--bucket", "damage"); code != 0 {
		t.Fatalf("second export: exit %d %s %s", code, out, errOut)
	}
	objs = exportObjects(t, expDir)
	if len(objs) != 2 || objs[0] != good {
		t.Fatalf("export objects %v, want %s and a newer one", objs, good)
	}
	damaged, err := os.ReadFile(objs[1])
	if err != nil {
		t.Fatal(err)
	}
	damaged[len(damaged)/2] ^= 0x01
	if err := os.WriteFile(objs[1], damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	d := damage{name: "corrupted store, newest export damaged", apply: flipAt(20)}
	dir := filepath.Join(t.TempDir(), "fold")
	copyDir(t, src, dir)
	d.apply(t, dir)
	a = harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "damage", "--data-dir", dir, "--backend", "memory", "--export-url", url)
	st := a.WaitCaughtUp(t, b, 60*time.Second)
	if !strings.HasSuffix(st.SeededFrom, filepath.Base(good)) {
		t.Fatalf("seeded from %q, want the intact export %s", st.SeededFrom, filepath.Base(good))
	}
	compareFold(t, b, a.Fold(t), nil)
	a.Terminate(t)
	report(t, "corrupt/exports", "boundaries", len(bounds), "damagedExports", len(variants), "rejected", len(variants),
		"repairedFromExport", 1, "seededFrom", filepath.Base(st.SeededFrom))
}

// exportObjects lists the files under a file:// export location, sorted.
func exportObjects(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
