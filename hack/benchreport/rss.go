package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// toolchain names the processes a job's tree sum leaves out: test binaries that build the
// agent with `go build` in TestMain would otherwise report the compiler's peak.
var toolchain = map[string]bool{"go": true, "compile": true, "link": true, "asm": true, "cgo": true, "vet": true, "cc1": true, "gcc": true, "ld": true, "collect2": true, "as": true}

// treeSampler tracks the peak of the summed resident set of every process in one process
// group (a job and the servers and agents it started), the Go toolchain excepted, sampled
// every interval.
type treeSampler struct {
	pgid int
	stop chan struct{}
	done sync.WaitGroup
	peak int64 // KiB
}

func sampleTree(pgid int, interval time.Duration) *treeSampler {
	s := &treeSampler{pgid: pgid, stop: make(chan struct{})}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.peak = max(s.peak, treeRSS(s.pgid))
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak in KiB.
func (s *treeSampler) Stop() int64 {
	close(s.stop)
	s.done.Wait()
	return s.peak
}

// treeRSS sums VmRSS (KiB) over the processes of group pgid, the toolchain excepted.
func treeRSS(pgid int) int64 {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var sum int64
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		s := string(raw)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 3 || f[2] != strconv.Itoa(pgid) || toolchain[s[open+1:end]] {
			continue
		}
		sum += vmRSS(filepath.Join(filepath.Dir(path), "status"))
	}
	return sum
}

func vmRSS(statusPath string) int64 {
	raw, err := os.ReadFile(statusPath)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
