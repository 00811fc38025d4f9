package main

import (
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// testdata/run holds the outputs of five real jobs of QUICK=1 partial runs (catch-up at 10k
// keys, restart at two sizes, ingest, memory overhead) and one hand-written failed job
// (resync-1m).

func TestReportFromRecordedRun(t *testing.T) {
	dir := t.TempDir()
	md, pngPath := filepath.Join(dir, "docs", "benchmarks.md"), filepath.Join(dir, "docs", "bench-restart.png")
	if err := run([]string{"report", "-dir", "testdata/run", "-md", md, "-png", pngPath}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, want := range []string{
		"> **Quick run**",
		"> **Partial run**",
		"**Machine:** 2 cores (AMD EPYC)",
		// Figure, same-run baseline, ratio, goal, verdict, RSS and command of one row.
		"| restart, 30k keys | 114 ms | naive WatchAll replay: 558 ms | 0.204x | < 150 ms (#3) | n/a (quick run) | 104 MiB | `SLIPSTREAM_BENCH_KEYS=30000 go test -count=1 -run '^$' -bench '^BenchmarkRestartVsNaive$' -benchtime 1x ./pkg/fold` |",
		// The median ratio of the rounds, then the lowest and the highest.
		"| memory fold, 10k keys | 227,583 msgs/s | raw consumer: 324,618 msgs/s | 0.733x (0.602–0.77) |",
		// A ratio the benchmark reported, the baseline derived from it.
		"| memory fold heap per key, 256 B values, 50k keys | 362 B/key | raw key+value bytes: 273 B/key | 1.32x | <= 2x raw (#3) |",
		"| fold pebble store `Apply`, 1k-key batches, 50k keys (no NATS) | 380,883 keys/s | raw Pebble `Batch.Commit(NoSync)` of the same batches, with Pebble's default table options and no cursor or count keys: 472,531 keys/s | 0.806x |",
		// Jobs that did not run or failed.
		"| restart, 60k keys | not run |",
		"| resync with diff, 50k keys | job failed |",
		"### Job resync-1m failed",
		"no ResyncDone within 10 minutes",
		"![Restart time against fold size, Slipstream and the naive WatchAll replay](bench-restart.png)",
		"30,000 keys, 19 naive_heap_MiB, 558 naive_ms, 2,798,360,536 ns/op, 0.203 ratio,",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("restart plot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 250 {
		t.Errorf("restart plot is %dx%d", b.Dx(), b.Dy())
	}
}

func TestReportRejectsBadRunDirectory(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.md")
	err := run([]string{"report", "-dir", dir, "-md", out, "-png", filepath.Join(dir, "p.png")})
	if err == nil || !strings.Contains(err.Error(), "run.json") {
		t.Fatalf("empty directory: %v, want an error naming run.json", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.json"), []byte(`{"jobs":[{"id":"x","output":"../x.txt"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err = run([]string{"report", "-dir", dir, "-md", out, "-png", filepath.Join(dir, "p.png")})
	if err == nil || !strings.Contains(err.Error(), "outside the run directory") {
		t.Fatalf("output path escaping the directory: %v", err)
	}
	if err := run([]string{"report", "-dir", dir}); err == nil || !strings.Contains(err.Error(), "-md") {
		t.Fatalf("missing flags: %v", err)
	}
	if err := run([]string{"frobnicate"}); err == nil {
		t.Fatal("unknown command accepted")
	}
}

// BenchmarkTiny is what TestRunOneRecordsChild runs in a child process. benchPackages skips
// hack/, so `make bench` never runs it.
func BenchmarkTiny(b *testing.B) {
	buf := make([]byte, 8<<20) // touch some memory so the child's peak RSS is visible
	for i := range buf {
		buf[i] = byte(i)
	}
	for range b.N {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(400 * time.Millisecond) // long enough for a few RSS samples
	b.ReportMetric(float64(buf[len(buf)-1]+42-buf[len(buf)-1]), "answer_ms")
}

func TestRunOneRecordsChild(t *testing.T) {
	if os.Getenv("BENCHREPORT_CHILD") != "" {
		t.Skip("inside the child")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	defer func(w io.Writer) { progress = w }(progress)
	progress = io.Discard
	dir := t.TempDir()
	j := job{ID: "tiny", Pkg: ".", Bench: "^BenchmarkTiny$", Env: map[string]string{"BENCHREPORT_CHILD": "1"}}.resolve(false)
	res := runOne(wd, dir, os.Args[0], j)
	if res.Exit != 0 || res.Error != "" {
		out, _ := os.ReadFile(filepath.Join(dir, res.Output))
		t.Fatalf("exit %d %s\n%s", res.Exit, res.Error, out)
	}
	if res.MaxRSSKiB < 8<<10 || res.TreeRSSKiB < 8<<10 {
		t.Errorf("peak RSS %d KiB (rusage), %d KiB (tree), want at least the 8 MiB the child touched", res.MaxRSSKiB, res.TreeRSSKiB)
	}
	if res.LoadStart == "" || res.LoadEnd == "" || res.WallSeconds <= 0 {
		t.Errorf("run record incomplete: %+v", res)
	}
	if want := "BENCHREPORT_CHILD=1 go test -count=1 -run '^$' -bench '^BenchmarkTiny$' -benchtime 1x ."; res.Command != want {
		t.Errorf("command %q, want %q", res.Command, want)
	}
	out, err := os.ReadFile(filepath.Join(dir, res.Output))
	if err != nil {
		t.Fatal(err)
	}
	d := &jobData{jobResult: res, values: map[string]map[string]float64{}, output: out}
	if err := d.parse(); err != nil {
		t.Fatal(err)
	}
	if v := d.values["Tiny"]["answer_ms"]; v != 42 {
		t.Errorf("parsed answer_ms = %v from\n%s", v, out)
	}
}

// TestPlanMatchesTree keeps the plan and the rows honest: every job's package exists and
// its -bench pattern names a Benchmark function there, every row refers to a planned job.
func TestPlanMatchesTree(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, j := range plan {
		if ids[j.ID] {
			t.Errorf("job %s listed twice", j.ID)
		}
		ids[j.ID] = true
		re, err := regexp.Compile(j.Bench)
		if err != nil {
			t.Errorf("job %s: %v", j.ID, err)
			continue
		}
		files, _ := filepath.Glob(filepath.Join(root, j.Pkg, "*_test.go"))
		var names []string
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range benchFuncRE.FindAll(src, -1) {
				names = append(names, strings.TrimSuffix(strings.TrimPrefix(string(m), "func "), "("))
			}
		}
		if !slices.ContainsFunc(names, re.MatchString) {
			t.Errorf("job %s: %s matches no Benchmark function in %s (has %v)", j.ID, j.Bench, j.Pkg, names)
		}
	}
	for _, a := range areas {
		for _, r := range a.Rows {
			for _, job := range []string{r.Job, r.Figure.Job, refJob(r.Base), refJob(r.Ratio)} {
				if job != "" && !ids[job] {
					t.Errorf("area %q row %q refers to job %s, which plan.go does not list", a.Title, r.Label, job)
				}
			}
		}
	}
	pkgs, err := benchPackages(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pkgs, "./pkg/fold") || slices.Contains(pkgs, "./hack/benchreport") {
		t.Errorf("benchPackages = %v: want ./pkg/fold and not hack/", pkgs)
	}
}

func refJob(x *ref) string {
	if x == nil {
		return ""
	}
	return x.Job
}
