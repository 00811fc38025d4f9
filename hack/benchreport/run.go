package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// runInfo is run.json: the machine and every job of one run.
type runInfo struct {
	Mode       string      `json:"mode"` // "full" or "quick"
	Started    time.Time   `json:"started"`
	Finished   time.Time   `json:"finished"`
	Commit     string      `json:"commit"`
	GoVersion  string      `json:"goVersion"`
	Machine    machineInfo `json:"machine"`
	LoadStart  string      `json:"loadStart"`
	LoadEnd    string      `json:"loadEnd"`
	Uncovered  []string    `json:"uncovered,omitempty"` // benchmarks the plan missed (run in jobs of their own)
	Jobs       []jobResult `json:"jobs"`
	PartialRun bool        `json:"partialRun,omitempty"` // -only: not every job ran
}

type machineInfo struct {
	Cores     int     `json:"cores"`
	CPU       string  `json:"cpu"`
	MemoryGiB float64 `json:"memoryGiB"`
	Disk      string  `json:"disk"`
	Kernel    string  `json:"kernel"`
}

type jobResult struct {
	ID          string   `json:"id"`
	Pkg         string   `json:"pkg"`
	Bench       string   `json:"bench"`
	Benchtime   string   `json:"benchtime"`
	Keys        int      `json:"keys,omitempty"`
	Env         []string `json:"env,omitempty"`
	Command     string   `json:"command"`
	Output      string   `json:"output"` // file in the run directory
	Exit        int      `json:"exit"`
	Error       string   `json:"error,omitempty"`
	WallSeconds float64  `json:"wallSeconds"`
	MaxRSSKiB   int64    `json:"maxRSSKiB"`            // wait4 rusage: the peak of the job or any process it waited for
	TreeRSSKiB  int64    `json:"treeRSSKiB,omitempty"` // sampled peak of the summed RSS of its process group, toolchain excepted
	LoadStart   string   `json:"loadStart"`
	LoadEnd     string   `json:"loadEnd"`
}

// progress receives every job's output as it runs.
var progress io.Writer = os.Stdout

// runJobs compiles the test binaries, checks coverage and runs the plan into dir.
func runJobs(dir string, quick bool, only []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	info := runInfo{Mode: "full", Started: time.Now().UTC(), LoadStart: loadAvg(), Machine: machine(), GoVersion: runtime.Version()}
	if quick {
		info.Mode = "quick"
	}
	info.Commit = commit(root)
	jobs := make([]resolved, 0, len(plan))
	for _, j := range plan {
		jobs = append(jobs, j.resolve(quick))
	}
	binDir := filepath.Join(dir, "bin")
	pkgs, err := benchPackages(root)
	if err != nil {
		return err
	}
	bins, err := compile(root, binDir, pkgs)
	if err != nil {
		return err
	}
	extra, uncovered, err := coverage(root, bins, jobs)
	if err != nil {
		return err
	}
	info.Uncovered = uncovered
	jobs = append(jobs, extra...)
	if len(only) > 0 {
		info.PartialRun = true
		jobs = slices.DeleteFunc(jobs, func(r resolved) bool { return !slices.Contains(only, r.ID) })
		if len(jobs) != len(only) {
			return fmt.Errorf("-only %s: unknown job ID among them (see plan.go)", strings.Join(only, ","))
		}
	}
	for i, j := range jobs {
		fmt.Printf("bench: [%d/%d] %s: %s\n", i+1, len(jobs), j.ID, j.command())
		res := runOne(root, dir, bins[j.Pkg], j)
		fmt.Printf("bench: %s: exit %d in %.0fs, peak RSS %.0f MiB (process tree, sampled) / %.0f MiB (rusage), load %s -> %s\n", j.ID, res.Exit, res.WallSeconds, float64(res.TreeRSSKiB)/1024, float64(res.MaxRSSKiB)/1024, res.LoadStart, res.LoadEnd)
		info.Jobs = append(info.Jobs, res)
	}
	info.Finished = time.Now().UTC()
	info.LoadEnd = loadAvg()
	raw, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "run.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	failed := 0
	for _, j := range info.Jobs {
		if j.Exit != 0 {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d jobs failed (their outputs are in %s; the report lists them)", failed, len(info.Jobs), dir)
	}
	return nil
}

// runOne runs one job's test binary in the package directory, as `go test` would.
func runOne(root, dir, bin string, j resolved) (res jobResult) {
	res = jobResult{ID: j.ID, Pkg: j.Pkg, Bench: j.Bench, Benchtime: j.Benchtime, Keys: j.Keys, Env: j.Env,
		Command: j.command(), Output: j.ID + ".txt", LoadStart: loadAvg()}
	defer func() { res.LoadEnd = loadAvg() }()
	out, err := os.Create(filepath.Join(dir, res.Output))
	if err != nil {
		res.Exit, res.Error = -1, err.Error()
		return res
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.count=1", "-test.run=^$", "-test.bench="+j.Bench,
		"-test.benchtime="+j.Benchtime, "-test.benchmem", "-test.timeout="+jobTimeout.String())
	cmd.Dir = filepath.Join(root, j.Pkg)
	cmd.Env = append(os.Environ(), j.Env...)
	cmd.Stdout = io.MultiWriter(out, progress)
	cmd.Stderr = cmd.Stdout
	// Own process group, so that a timeout ends the servers and agents the job started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	if err = cmd.Start(); err == nil {
		sampler := sampleTree(cmd.Process.Pid, 100*time.Millisecond)
		err = cmd.Wait()
		res.TreeRSSKiB = sampler.Stop()
	}
	res.WallSeconds = time.Since(start).Seconds()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.MaxRSSKiB = ru.Maxrss // KiB on Linux
		}
	}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.Exit, res.Error = -1, fmt.Sprintf("killed after the %s job timeout", jobTimeout)
	case errors.As(err, &ee):
		res.Exit = ee.ExitCode()
	case err != nil:
		res.Exit, res.Error = -1, err.Error()
	}
	return res
}

func moduleRoot() (string, error) {
	out, err := exec.CommandContext(context.Background(), "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module: run from the repository")
	}
	return filepath.Dir(mod), nil
}

var benchFuncRE = regexp.MustCompile(`(?m)^func Benchmark[A-Za-z0-9_]*\(`)

// benchPackages lists the packages (./relative/dir) with a Benchmark function in a test
// file, except hack/ (the report generator's own smoke benchmark).
func benchPackages(root string) ([]string, error) {
	var pkgs []string
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if name := d.Name(); rel != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "bin" || name == "vendor" || rel == "hack") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := "./" + filepath.ToSlash(filepath.Dir(rel))
		if seen[pkg] {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if benchFuncRE.Match(src) {
			seen[pkg] = true
			pkgs = append(pkgs, pkg)
		}
		return nil
	})
	slices.Sort(pkgs)
	return pkgs, err
}

// compile builds each package's test binary into binDir (go test -c), one at a time.
func compile(root, binDir string, pkgs []string) (map[string]string, error) {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for _, pkg := range pkgs {
		bin := filepath.Join(binDir, strings.ReplaceAll(strings.TrimPrefix(pkg, "./"), "/", "_")+".test")
		if !filepath.IsAbs(bin) {
			abs, err := filepath.Abs(bin)
			if err != nil {
				return nil, err
			}
			bin = abs
		}
		fmt.Printf("bench: compiling %s\n", pkg)
		cmd := exec.CommandContext(context.Background(), "go", "test", "-c", "-o", bin, pkg)
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go test -c %s: %w", pkg, err)
		}
		bins[pkg] = bin
	}
	return bins, nil
}

// coverage lists every package's benchmarks and returns a job for each package whose
// benchmarks the plan does not all cover (1x, like the plan's sized jobs), with their names.
func coverage(root string, bins map[string]string, jobs []resolved) ([]resolved, []string, error) {
	var extra []resolved
	var uncovered []string
	for _, pkg := range slices.Sorted(maps.Keys(bins)) {
		cmd := exec.CommandContext(context.Background(), bins[pkg], "-test.list", "^Benchmark")
		cmd.Dir = filepath.Join(root, pkg)
		out, err := cmd.Output()
		if err != nil {
			return nil, nil, fmt.Errorf("%s -test.list: %w", pkg, err)
		}
		var missing []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			name := strings.TrimSpace(sc.Text())
			if !strings.HasPrefix(name, "Benchmark") {
				continue
			}
			if !slices.ContainsFunc(jobs, func(j resolved) bool {
				return j.Pkg == pkg && regexp.MustCompile(j.Bench).MatchString(name)
			}) {
				missing = append(missing, name)
				uncovered = append(uncovered, pkg+" "+name)
			}
		}
		if len(missing) > 0 {
			id := "other-" + strings.ReplaceAll(strings.TrimPrefix(pkg, "./"), "/", "-")
			extra = append(extra, job{ID: id, Pkg: pkg, Bench: "^(" + strings.Join(missing, "|") + ")$"}.resolve(false))
		}
	}
	return extra, uncovered, nil
}

// machine describes this machine: cores, CPU model, memory, the disk under the temporary
// directory (where every benchmark writes) and the kernel.
func machine() machineInfo {
	m := machineInfo{Cores: runtime.NumCPU(), CPU: "unknown", Disk: "unknown", Kernel: "unknown"}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(raw), "MemTotal: %f kB", &kb); err == nil {
			m.MemoryGiB = kb / (1 << 20)
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	m.Disk = disk(os.TempDir())
	return m
}

// disk names the filesystem holding dir: device, type, size and whether it is rotational.
func disk(dir string) string {
	raw, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		resolved = dir
	}
	var dev, mnt, fstype string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		if (resolved == f[1] || strings.HasPrefix(resolved, strings.TrimSuffix(f[1], "/")+"/")) && len(f[1]) >= len(mnt) {
			dev, mnt, fstype = f[0], f[1], f[2]
		}
	}
	if dev == "" {
		return "unknown"
	}
	var st syscall.Statfs_t
	size := ""
	if syscall.Statfs(resolved, &st) == nil {
		size = fmt.Sprintf(", %.0f GiB", float64(st.Blocks)*float64(st.Bsize)/(1<<30))
	}
	kind := ""
	if rot, err := os.ReadFile("/sys/block/" + filepath.Base(dev) + "/queue/rotational"); err == nil {
		kind = ", queue/rotational " + strings.TrimSpace(string(rot))
	}
	return fmt.Sprintf("%s (%s) mounted on %s, holding %s%s%s", dev, fstype, mnt, dir, size, kind)
}

// loadAvg is the 1, 5 and 15-minute load average.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func commit(root string) string {
	cmd := exec.CommandContext(context.Background(), "git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	cmd = exec.CommandContext(context.Background(), "git", "status", "--porcelain", "--untracked-files=no")
	cmd.Dir = root
	if st, err := cmd.Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += " (with uncommitted changes in the tree)"
	}
	return c
}
