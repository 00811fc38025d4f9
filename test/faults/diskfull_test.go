package faults_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/client"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts it at cleanup.
// The suite runs as root in CI; where mounting is not permitted it fails saying so.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("the disk-full scenario needs a small filesystem to fill: mount -t tmpfs failed (%v: %s); run the suite as root (or with CAP_SYS_ADMIN)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillUp writes a ballast file until only leave bytes are free on dir's filesystem.
func fillUp(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for left := free - leave; left > 0; left -= int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(int64(len(chunk)), left)]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break // the agent wrote meanwhile: the disk is full all the same
			}
			t.Fatalf("write ballast: %v", err)
		}
	}
	return path
}

func httpStatus(t testing.TB, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDiskFull runs the agent on a small tmpfs whose space a ballast file takes up while a
// writer keeps writing: the agent must go Degraded with a clear error (status, /readyz 503,
// /healthz 200, reads still served and marked stale), never exit or corrupt its store, and
// recover by itself when the ballast is deleted. At the end the fold equals the bucket key
// by key and `agent verify` passes.
//
// Both backends. The pebble store stops writing while less than its reserve (memtable +
// 8 MiB = 40 MiB) is free, because Pebble ends the process when a WAL write fails; its
// filesystem is larger so that the reserve and Pebble's WAL and flushes fit beside the fold.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		backend string
		size    int64
	}{{"memory", 64 << 20}, {"pebble", 256 << 20}} {
		t.Run(tc.backend, func(t *testing.T) { diskFull(t, tc.backend, tc.size) })
	}
}

func diskFull(t *testing.T, backend string, size int64) {
	mnt := mountTmpfs(t, size)
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "disk")
	dir := filepath.Join(mnt, "fold")
	args := []string{"--nats-url", n.URL(), "--bucket", "disk", "--data-dir", dir, "--backend", backend}
	a := harness.StartAgent(t, args...)
	w := startWriter(t, b, "blob.", 2000, 4<<10, 0)
	a.WaitCaughtUp(t, b, 60*time.Second)
	ballast := fillUp(t, mnt, 2<<20)
	var full string
	proctest.Eventually(t, 120*time.Second, "the agent Degraded on a full disk", func() error {
		st, err := a.Status()
		if err != nil {
			return err
		}
		if st.Phase != "Degraded" || !strings.Contains(st.LastError, "no space left on device") {
			return fmt.Errorf("phase %s lastError %q (writer: %d written)", st.Phase, st.LastError, w.acked.Load())
		}
		full = st.LastError
		return nil
	})
	if !a.MustStatus(t).Stale {
		t.Fatal("a Degraded agent's status is not marked stale")
	}
	if code := httpStatus(t, a.BaseURL()+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz on a full disk: %d, want 503", code)
	}
	if code := httpStatus(t, a.BaseURL()+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz on a full disk: %d, want 200 (the process serves)", code)
	}
	proctest.Eventually(t, 30*time.Second, "the fold served while the disk is full", func() error {
		c, err := client.New(a.BaseURL())
		if err != nil {
			return err
		}
		e, err := c.Get(context.Background(), "blob.k0000")
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			return err
		}
		if err == nil && !e.Stale {
			return errors.New("a read while Degraded is not marked stale")
		}
		return nil
	})
	w.waitAcked(t, 200, 60*time.Second) // NATS moves on while the fold cannot
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	w.waitAcked(t, 200, 60*time.Second)
	w.halt()
	proctest.Eventually(t, 120*time.Second, "the agent Live at the bucket's last sequence after space returned", func() error {
		bs, err := b.Status(context.Background())
		if err != nil {
			return err
		}
		st, err := a.Status()
		if err != nil {
			return err
		}
		if st.Phase != "Live" || st.Cursor < bs.LastSeq {
			return fmt.Errorf("phase %s cursor %d < %d (lastError %q)", st.Phase, st.Cursor, bs.LastSeq, st.LastError)
		}
		return nil
	})
	lost := compareFold(t, b, a.Fold(t), w)
	a.Terminate(t)
	compareFold(t, b, harness.DumpFold(t, dir), w)
	if code, out, errOut := harness.RunAgent(t, nil, "verify", "--data-dir", dir); code != 0 {
		t.Fatalf("verify after the disk filled up: exit %d %s %s", code, out, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bs, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "disk-full/"+backend, "tmpfs", fmt.Sprintf("%dMiB", size>>20), "recoveries", 1, "updatesWritten", w.acked.Load(), "updatesLost", lost,
		"finalCursor", bs.LastSeq, "degradedWith", fmt.Sprintf("%q", proctest.Tail(full, 160)))
}
