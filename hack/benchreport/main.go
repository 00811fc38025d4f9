// Command benchreport runs the project's benchmarks and writes the benchmark report
// (docs/benchmarks.md) and the restart plot (docs/bench-restart.png). `make bench` calls it
// through hack/bench.sh.
//
//	benchreport run    -dir DIR [-quick] [-only ID,ID]   # run every job, results into DIR
//	benchreport report -dir DIR -md FILE -png FILE       # turn DIR's results into the report
//
// run compiles the test binary of every package that has benchmarks, checks that the plan
// (plan.go) covers every Benchmark function (an uncovered one gets a job of its own, so a
// new benchmark is never silently skipped), then runs each job in its own process, one at a
// time, recording the child's peak RSS (wait4 rusage, which includes the processes it
// started and waited for, such as an agent), wall time and the load average. DIR receives
// run.json (the machine and every job) and JOB.txt (each job's `go test -bench` output).
//
// report parses the job outputs with golang.org/x/perf/benchfmt and writes one table per
// area: figure, same-run baseline, ratio, goal and verdict, peak RSS and the command that
// reproduces the row.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: benchreport run|report [flags] (see the package doc)")
	}
	switch args[0] {
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		dir := fs.String("dir", "", "directory for run.json and the job outputs (required)")
		quick := fs.Bool("quick", false, "scaled-down sizes and durations: a smoke run, not the published figures")
		only := fs.String("only", "", "comma-separated job IDs to run (default: all)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return fmt.Errorf("run: -dir is required")
		}
		var ids []string
		if *only != "" {
			ids = strings.Split(*only, ",")
		}
		return runJobs(*dir, *quick, ids)
	case "report":
		fs := flag.NewFlagSet("report", flag.ContinueOnError)
		dir := fs.String("dir", "", "directory written by `benchreport run` (required)")
		md := fs.String("md", "", "markdown report to write (required)")
		png := fs.String("png", "", "restart plot to write (required)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" || *md == "" || *png == "" {
			return fmt.Errorf("report: -dir, -md and -png are required")
		}
		return writeReport(*dir, *md, *png)
	default:
		return fmt.Errorf("unknown command %q: want run or report", args[0])
	}
}
