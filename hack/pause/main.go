//go:build linux

// Command pause is the sandbox ("pause") image of the local test cluster (containerd's CRI
// sandbox_image): it holds a Pod's namespaces open and does nothing else. As PID 1 of its
// namespace it reaps every child that is re-parented to it, and it exits 0 on SIGTERM or
// SIGINT, like the upstream pause container (which cannot be pulled here: no registry).
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintf(os.Stderr, "pause: takes no arguments, got %q\n", os.Args[1:])
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			reap()
			continue
		}
		os.Exit(0)
	}
}

// reap collects every exited child without blocking (SIGCHLD signals coalesce, so one signal
// may stand for several exits).
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
