package proctest

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	e := func(k string, rev uint64, v string) Entry { return Entry{Key: k, Revision: rev, Value: []byte(v)} }
	bucket := []Entry{e("a", 1, "x"), e("b", 2, "y"), e("c", 3, "z")}
	for _, tc := range []struct {
		name string
		fold []Entry
		want string // "" for equal
	}{
		{"equal", []Entry{e("a", 1, "x"), e("b", 2, "y"), e("c", 3, "z")}, ""},
		{"lacks", []Entry{e("a", 1, "x"), e("c", 3, "z")}, `1 keys differ: fold lacks "b" (bucket rev 2)`},
		{"extra", append([]Entry{e("0", 9, "w")}, bucket...), `1 keys differ: fold has extra "0" (rev 9)`},
		{"value", []Entry{e("a", 1, "x"), e("b", 2, "Y"), e("c", 3, "z")}, `1 keys differ: "b": bucket rev 2, fold rev 2`},
		{"empty", nil, "3 keys differ"},
	} {
		err := Diff(bucket, tc.fold)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s: Diff = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestOutputLines(t *testing.T) {
	var lines []string
	o := output{onLine: func(l string) { lines = append(lines, l) }}
	for _, p := range []string{"one\ntw", "o\n", "three"} {
		_, _ = o.Write([]byte(p))
	}
	if got := strings.Join(lines, "|"); got != "one|two" {
		t.Fatalf("lines %q, want one|two", got)
	}
	if o.String() != "one\ntwo\nthree" {
		t.Fatalf("output %q", o.String())
	}
}

func TestProcessStopKillsAfterGrace(t *testing.T) {
	// A shell that ignores SIGTERM: Stop must fall back to SIGKILL of that PID.
	p, err := Start("sh", exec.Command("sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.05; done`))
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "the shell started", func() error {
		if !strings.Contains(p.Output(), "ready") {
			return errNotYet
		}
		return nil
	})
	start := time.Now()
	p.Stop(200 * time.Millisecond)
	if p.Running() || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("running %v after %s", p.Running(), time.Since(start))
	}
	if p.Err() == nil {
		t.Fatal("a killed process reported exit 0")
	}
}

var errNotYet = errors.New("not yet")
