package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// jobData is one job's record and its parsed results.
type jobData struct {
	jobResult
	// values[bench][unit]; bench without "Benchmark" and the -N suffix.
	values map[string]map[string]float64
	order  []string // bench names in output order
	output []byte
}

type results struct {
	info runInfo
	jobs map[string]*jobData
}

// load reads run.json and every job's output from dir.
func load(dir string) (*results, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return nil, fmt.Errorf("%w (run `benchreport run -dir %s` first)", err, dir)
	}
	rs := &results{jobs: map[string]*jobData{}}
	if err := json.Unmarshal(raw, &rs.info); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "run.json"), err)
	}
	if len(rs.info.Jobs) == 0 {
		return nil, fmt.Errorf("%s lists no jobs", filepath.Join(dir, "run.json"))
	}
	for _, j := range rs.info.Jobs {
		if j.ID == "" || j.Output == "" || filepath.Base(j.Output) != j.Output {
			return nil, fmt.Errorf("run.json: job %q has no ID or an output outside the run directory (%q)", j.ID, j.Output)
		}
		out, err := os.ReadFile(filepath.Join(dir, j.Output))
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
		d := &jobData{jobResult: j, values: map[string]map[string]float64{}, output: out}
		if err := d.parse(); err != nil {
			return nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
		rs.jobs[j.ID] = d
	}
	return rs, nil
}

// parse reads the job's `go test -bench` output with benchfmt.
func (d *jobData) parse() error {
	r := benchfmt.NewReader(bytes.NewReader(d.output), d.Output)
	for r.Scan() {
		res, ok := r.Result().(*benchfmt.Result)
		if !ok {
			continue // unit metadata, or a line benchfmt could not read (reported in the output)
		}
		name := benchName(res.Name)
		if _, seen := d.values[name]; !seen {
			d.values[name] = map[string]float64{}
			d.order = append(d.order, name)
		}
		for _, v := range res.Values {
			unit, val := v.Unit, v.Value
			if v.OrigUnit != "" {
				unit, val = v.OrigUnit, v.OrigValue
			}
			d.values[name][unit] = val
		}
	}
	return r.Err()
}

// benchName is a result's name without the GOMAXPROCS suffix: "Import/pebble".
func benchName(n benchfmt.Name) string {
	base, parts := n.Parts()
	name := string(base)
	for _, p := range parts {
		if len(p) > 0 && p[0] == '/' {
			name += string(p)
		}
	}
	return name
}

// peakRSS is the job's sampled process-tree peak, or its rusage peak when it was not
// sampled.
func (j jobResult) peakRSS() int64 {
	if j.TreeRSSKiB > 0 {
		return j.TreeRSSKiB
	}
	return j.MaxRSSKiB
}

// value looks up x (its job defaulting to job); problem says why it is missing.
func (rs *results) value(job string, x ref) (v float64, problem string) {
	if x.Job != "" {
		job = x.Job
	}
	d, ok := rs.jobs[job]
	switch {
	case !ok:
		return 0, "not run"
	case d.Exit != 0:
		return 0, "job failed"
	}
	v, ok = d.values[x.Bench][x.Unit]
	if !ok {
		return 0, fmt.Sprintf("no %s in %s", x.Unit, x.Bench)
	}
	return v, ""
}

// keys is the fold size of a job: as run, else as planned for this run's mode.
func (rs *results) keys(job string) int {
	if d, ok := rs.jobs[job]; ok && d.Keys > 0 {
		return d.Keys
	}
	for _, j := range plan {
		if j.ID == job {
			return j.resolve(rs.info.Mode != "full").Keys
		}
	}
	return 0
}

// writeReport renders dir's results into the markdown report and the restart plot.
func writeReport(dir, mdPath, pngPath string) error {
	rs, err := load(dir)
	if err != nil {
		return err
	}
	pngRel, err := filepath.Rel(filepath.Dir(mdPath), pngPath)
	if err != nil {
		return err
	}
	plotted, err := writeRestartPlot(rs, pngPath)
	if err != nil {
		return err
	}
	md := rs.markdown(filepath.ToSlash(pngRel), plotted)
	if err := os.MkdirAll(filepath.Dir(mdPath), 0o755); err != nil {
		return err
	}
	return os.WriteFile(mdPath, md, 0o644)
}

type rendered struct {
	label, figure, baseline, ratio, goal, verdict, rss, command string
	met, checked                                                bool
}

func (rs *results) render(a row) rendered {
	j := rs.jobs[a.Job]
	out := rendered{label: a.Label, goal: "—", verdict: "—", baseline: "—", ratio: "—", rss: "—", command: "—"}
	scale := a.Scale
	if scale == 0 {
		scale = 1
	}
	sizes := strings.NewReplacer("{keys}", sizeLabel(rs.keys(a.Job)))
	out.label = sizes.Replace(a.Label)
	a.BaseLabel = sizes.Replace(a.BaseLabel)
	if j != nil {
		out.command = "`" + strings.ReplaceAll(j.Command, "|", `\|`) + "`"
		if kib := j.peakRSS(); kib > 0 {
			out.rss = fmt.Sprintf("%.0f MiB", float64(kib)/1024)
		}
	}
	fig, problem := rs.value(a.Job, a.Figure)
	if problem != "" {
		out.figure = problem
		if a.Goal != nil {
			out.goal = a.Goal.Text + " (" + a.Goal.Source + ")"
			out.verdict = "not measured"
		}
		return out
	}
	fig *= scale
	out.figure = formatValue(fig, a.Unit)
	ratio, haveRatio := math.NaN(), false
	if a.Ratio != nil {
		if v, problem := rs.value(a.Job, *a.Ratio); problem == "" {
			ratio, haveRatio = v, true
		}
	}
	switch {
	case a.Base != nil:
		base, problem := rs.value(a.Job, *a.Base)
		if problem != "" {
			out.baseline = a.BaseLabel + ": " + problem
			break
		}
		base *= scale
		out.baseline = a.BaseLabel + ": " + formatValue(base, a.Unit)
		if !haveRatio && base != 0 {
			ratio, haveRatio = fig/base, true
		}
	case a.BaseLabel != "" && haveRatio && ratio != 0:
		out.baseline = a.BaseLabel + ": " + formatValue(fig/ratio, a.Unit)
	}
	if haveRatio {
		out.ratio = fmt.Sprintf("%.3gx", ratio)
		if a.RatioRange != nil {
			lo, p1 := rs.value(a.Job, a.RatioRange[0])
			hi, p2 := rs.value(a.Job, a.RatioRange[1])
			if p1 == "" && p2 == "" {
				out.ratio += fmt.Sprintf(" (%.3g–%.3g)", lo, hi)
			}
		}
	}
	if a.Goal == nil {
		return out
	}
	out.goal = a.Goal.Text + " (" + a.Goal.Source + ")"
	if rs.info.Mode != "full" {
		out.verdict = "n/a (quick run)"
		return out
	}
	x, ok := fig, true
	if a.Goal.On == "ratio" {
		x, ok = ratio, haveRatio
	}
	if !ok {
		out.verdict = "not measured"
		return out
	}
	out.checked = true
	switch a.Goal.Op {
	case ">=":
		out.met = x >= a.Goal.Value
	case "<=":
		out.met = x <= a.Goal.Value
	case "<":
		out.met = x < a.Goal.Value
	}
	out.verdict = "yes"
	if !out.met {
		out.verdict = "**no**"
	}
	return out
}

// formatValue prints v with its unit: thousands separators from 1,000, else 3 significant
// digits.
func formatValue(v float64, unit string) string {
	var s string
	switch {
	case math.Abs(v) >= 1000:
		s = thousands(int64(math.Round(v)))
	case v == 0:
		s = "0"
	default:
		s = strconv.FormatFloat(v, 'g', 3, 64)
		if strings.Contains(s, "e") {
			s = strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return s + " " + unit
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func (rs *results) markdown(pngRel string, plotted bool) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	in := rs.info
	m := in.Machine
	w("# Benchmarks\n\n")
	w("Written by `make bench` (hack/bench.sh, hack/benchreport) from the run of %s to %s UTC at commit %s, %s. "+
		"Do not edit by hand: run `make bench` again.\n\n", in.Started.Format("2006-01-02 15:04"), in.Finished.Format("15:04"), in.Commit, in.GoVersion)
	if in.Mode != "full" {
		w("> **Quick run** (`QUICK=1`): sizes and durations are scaled down for a smoke test. These are not the published figures and no goal is checked.\n\n")
	}
	if in.PartialRun {
		w("> **Partial run**: only some jobs ran (`BENCH_ONLY`); rows of the others read \"not run\".\n\n")
	}
	w("**Machine:** %d cores (%s), %.1f GiB memory, disk %s, Linux %s.\n\n", m.Cores, m.CPU, m.MemoryGiB, m.Disk, m.Kernel)
	w("**Load average** (1, 5, 15 min): %s at the start, %s at the end.", in.LoadStart, in.LoadEnd)
	if busy(in.LoadStart, m.Cores) || busy(in.LoadEnd, m.Cores) {
		w(" The machine was shared with other work during this run (load above its %d cores), so absolute figures "+
			"(latencies, rates) are pessimistic and noisy; ratios compare a figure with a baseline measured in the "+
			"same run under the same load, mostly in the same process. The load at each job's start and end is in "+
			"[Runs](#runs).", m.Cores)
	}
	w("\n\n")
	w("How to read the tables: *figure* is Slipstream, *baseline* the alternative measured in the same run, " +
		"*ratio* figure/baseline (for throughput higher is better, for times lower), *goal* the target of the " +
		"issue named in brackets, *met* whether this run reached it. *Peak RSS* is the job process's maximum " +
		"resident set (wait4 rusage, including any nats-server or agent process it started and waited for). " +
		"Each job runs alone in its own process; *command* reproduces the row from the repository root.\n\n")

	met, checked := 0, 0
	var body bytes.Buffer
	for _, a := range areas {
		fmt.Fprintf(&body, "## %s\n\n%s\n\n", a.Title, a.Intro)
		body.WriteString("| row | figure | baseline | ratio | goal | met | peak RSS | command |\n|---|---|---|---|---|---|---|---|\n")
		for _, r := range a.Rows {
			x := rs.render(r)
			if x.checked {
				checked++
				if x.met {
					met++
				}
			}
			fmt.Fprintf(&body, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", x.label, x.figure, x.baseline, x.ratio, x.goal, x.verdict, x.rss, x.command)
		}
		body.WriteString("\n")
		if a.Plot {
			if plotted {
				fmt.Fprintf(&body, "![Restart time against fold size, Slipstream and the naive WatchAll replay](%s)\n\n", pngRel)
			} else {
				body.WriteString("(No restart plot: no restart job produced figures in this run.)\n\n")
			}
		}
	}
	if in.Mode == "full" {
		w("**Goals met in this run: %d of %d.**\n\n", met, checked)
	}
	b.Write(body.Bytes())

	w("## All results\n\nEvery benchmark result of the run, with every metric it reported.\n\n| job | benchmark | metrics |\n|---|---|---|\n")
	for _, j := range in.Jobs {
		d := rs.jobs[j.ID]
		if len(d.order) == 0 {
			w("| %s | — | no results (exit %d) |\n", j.ID, j.Exit)
		}
		for _, name := range d.order {
			var ms []string
			for _, unit := range slices.Sorted(maps.Keys(d.values[name])) {
				ms = append(ms, formatValue(d.values[name][unit], unit))
			}
			w("| %s | %s | %s |\n", j.ID, name, strings.Join(ms, ", "))
		}
	}
	w("\n")
	if len(in.Uncovered) > 0 {
		w("Benchmarks that hack/benchreport/plan.go does not list ran in `other-*` jobs at 1x: %s.\n\n", "`"+strings.Join(in.Uncovered, "`, `")+"`")
	}
	w("## Runs\n\n*Tree RSS* is the sampled peak of the job's process group (the tables' peak RSS); *rusage* is wait4's " +
		"ru_maxrss: the largest single process among the job and the processes it waited for, the Go toolchain included.\n\n")
	w("| job | command | exit | wall | tree RSS | rusage max RSS | load at start | load at end |\n|---|---|---|---|---|---|---|---|\n")
	for _, j := range in.Jobs {
		status := strconv.Itoa(j.Exit)
		if j.Error != "" {
			status += " (" + j.Error + ")"
		}
		w("| %s | `%s` | %s | %.0f s | %.0f MiB | %.0f MiB | %s | %s |\n", j.ID, strings.ReplaceAll(j.Command, "|", `\|`), status, j.WallSeconds,
			float64(j.TreeRSSKiB)/1024, float64(j.MaxRSSKiB)/1024, j.LoadStart, j.LoadEnd)
	}
	w("\n")
	for _, j := range in.Jobs {
		if j.Exit == 0 {
			continue
		}
		w("### Job %s failed\n\nLast lines of its output:\n\n```\n%s\n```\n\n", j.ID, tail(rs.jobs[j.ID].output, 25))
	}
	return b.Bytes()
}

// busy reports whether the 1-minute load in load ("1 5 15") is above cores.
func busy(load string, cores int) bool {
	f := strings.Fields(load)
	if len(f) == 0 {
		return false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return err == nil && v > float64(cores)
}

func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
