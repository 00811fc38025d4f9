package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPurgeRemovesFoldAndEmptyParent(t *testing.T) {
	root := t.TempDir()
	fold := filepath.Join(root, "ns", "routes")
	if err := os.MkdirAll(filepath.Join(fold, "store"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fold, "store", "000001.sst"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := purgeMain([]string{"--path=" + fold}, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if _, err := os.Stat(filepath.Join(root, "ns")); !os.IsNotExist(err) {
		t.Fatalf("empty namespace dir left behind: %v", err)
	}
	// Idempotent: a second run (a retried Job) succeeds.
	if code := purgeMain([]string{"--path=" + fold}, &out); code != 0 {
		t.Fatalf("second run exit %d: %s", code, out.String())
	}
}

func TestPurgeKeepsSiblingsAndSymlinkTargets(t *testing.T) {
	root := t.TempDir()
	other := filepath.Join(root, "ns", "other")
	target := filepath.Join(root, "elsewhere")
	for _, d := range []string{other, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fold := filepath.Join(root, "ns", "routes")
	if err := os.Symlink(target, fold); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := purgeMain([]string{"--path=" + fold}, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	for _, d := range []string{other, target} {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("%s was removed: %v", d, err)
		}
	}
	if _, err := os.Lstat(fold); !os.IsNotExist(err) {
		t.Fatalf("symlink left: %v", err)
	}
}

func TestPurgeRefusesBadPaths(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"", "--path is required"},
		{"--path=relative/x", "clean absolute path"},
		{"--path=/var/lib/../x", "clean absolute path"},
		{"--path=/var", "top-level"},
		{"--path=/", "top-level"},
	} {
		var out bytes.Buffer
		args := []string{}
		if tc.args != "" {
			args = append(args, tc.args)
		}
		if code := purgeMain(args, &out); code != 2 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%q: exit %d, output %q; want exit 2 mentioning %q", tc.args, code, out.String(), tc.want)
		}
	}
}
