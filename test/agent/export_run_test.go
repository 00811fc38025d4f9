package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
)

// rawStatus is /v1/status with the export and seed fields the Go client does not model.
type rawStatus struct {
	Phase         string `json:"phase"`
	Cursor        uint64 `json:"cursor"`
	Keys          uint64 `json:"keys"`
	Resyncs       uint64 `json:"resyncs"`
	CursorExpired uint64 `json:"cursorExpired"`
	SeededFrom    string `json:"seededFrom"`
	LastError     string `json:"lastError"`
	LastExport    *struct {
		Object string    `json:"object"`
		Cursor uint64    `json:"cursor"`
		Keys   uint64    `json:"keys"`
		Bytes  int64     `json:"bytes"`
		Time   time.Time `json:"time"`
	} `json:"lastExport"`
}

func fetchRawStatus(a *proctest.Agent) (rawStatus, error) {
	var st rawStatus
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.BaseURL()+"/v1/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// postExport calls POST /v1/export and returns the code and the JSON body's "code" field.
func postExport(t *testing.T, a *proctest.Agent) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.BaseURL()+"/v1/export", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Code   string `json:"code"`
		Status string `json:"status"`
	}
	_ = json.Unmarshal(body, &e)
	if e.Code == "" {
		e.Code = e.Status
	}
	return resp.StatusCode, e.Code
}

func exportObjects(t *testing.T, dir, bucket string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, bucket))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".slex") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestRunExportsOnScheduleAndOnDemand: an agent with --export-url and --export-interval
// exports while it holds the lease (status lastExport, metrics), keeps --export-retain
// exports, answers POST /v1/export with 202; a second agent of the same fold does not hold
// the lease and gets 409; a failing location is counted and retried, never a crash.
func TestRunExportsOnScheduleAndOnDemand(t *testing.T) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "routes")
	putN(t, b, "route", 30)
	exports := t.TempDir()
	url := "file://" + exports
	a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "routes", "--data-dir", t.TempDir(),
		"--export-url", url, "--export-interval", "1s", "--export-retain", "2", "--export-grace", "0s", "--export-holder", "agent-a")
	a.WaitCaughtUp(t, b, 20*time.Second)
	var st rawStatus
	proctest.Eventually(t, 20*time.Second, "a scheduled export at the fold's cursor", func() error {
		var err error
		if st, err = fetchRawStatus(a); err != nil {
			return err
		}
		if st.LastExport == nil || st.LastExport.Cursor != 30 {
			return fmt.Errorf("lastExport %+v (lastError %q)", st.LastExport, st.LastError)
		}
		return nil
	})
	if st.LastExport.Keys != 30 || !strings.HasPrefix(st.LastExport.Object, "routes/") {
		t.Fatalf("lastExport %+v, want 30 keys under routes/", st.LastExport)
	}
	if ts, err := a.Metric("slipstream_last_export_success_timestamp_seconds"); err != nil || time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Fatalf("last export timestamp %v (%v), want recent", ts, err)
	}
	// Scheduled exports happen only when the fold moved: keep writing.
	moved := 0
	proctest.Eventually(t, 30*time.Second, "retention down to 2 exports with more coming", func() error {
		moved++
		if _, err := b.Put(context.Background(), fmt.Sprintf("moving.%d", moved), []byte("x")); err != nil {
			return err
		}
		if ok, _ := a.Metric(`slipstream_exports_total{result="success"}`); ok < 4 {
			return fmt.Errorf("%v successful exports", ok)
		}
		if objs := exportObjects(t, exports, "routes"); len(objs) != 2 {
			return fmt.Errorf("%d exports kept: %v", len(objs), objs)
		}
		return nil
	})

	// A second agent of the same fold: seeded, Live, but not the exporter.
	a2 := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "routes", "--data-dir", t.TempDir(),
		"--export-url", url, "--export-holder", "agent-b")
	a2.WaitCaughtUp(t, b, 20*time.Second)
	if code, why := postExport(t, a2); code != http.StatusConflict || why != "not_lease_holder" {
		t.Fatalf("POST /v1/export on the non-holder: %d %q, want 409 not_lease_holder", code, why)
	}
	// On demand on the holder: 202 (or 409 export_running when a tick just started one).
	proctest.Eventually(t, 10*time.Second, "POST /v1/export accepted by the lease holder", func() error {
		if code, why := postExport(t, a); code != http.StatusAccepted {
			return fmt.Errorf("%d %s", code, why)
		}
		return nil
	})

	// The location fails: counted, shown, retried; the agent stays Live and serving.
	before, _ := a.Metric(`slipstream_exports_total{result="failure"}`)
	// A file where the location's directory was: every write below it fails. The export
	// just accepted may still be writing there, so removal is retried until it wins.
	proctest.Eventually(t, 10*time.Second, "export location removed", func() error { return os.RemoveAll(exports) })
	writeFile(t, exports, []byte("not a directory"))
	if _, err := b.Put(context.Background(), "while.failing", []byte("x")); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 20*time.Second, "failed exports counted and shown", func() error {
		f, err := a.Metric(`slipstream_exports_total{result="failure"}`)
		if err != nil {
			return err
		}
		st, err := fetchRawStatus(a)
		if err != nil {
			return err
		}
		if f <= before || !strings.Contains(st.LastError, "export") || st.Phase != "Live" {
			return fmt.Errorf("failures %v, phase %s, lastError %q", f, st.Phase, st.LastError)
		}
		return nil
	})
	if err := os.Remove(exports); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(exports, 0o755); err != nil {
		t.Fatal(err)
	}
	putN(t, b, "after", 3)
	bs, err := b.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 20*time.Second, "exports resume once the location is back", func() error {
		st, err := fetchRawStatus(a)
		if err != nil {
			return err
		}
		if st.LastExport == nil || st.LastExport.Cursor != bs.LastSeq || len(exportObjects(t, exports, "routes")) == 0 {
			return fmt.Errorf("lastExport %+v, want cursor %d", st.LastExport, bs.LastSeq)
		}
		return nil
	})
	// A quiet fold is not exported again and again: ticks are skipped.
	succ := a.MustMetric(t, `slipstream_exports_total{result="success"}`)
	skipped := a.MustMetric(t, `slipstream_exports_total{result="skipped"}`)
	proctest.Eventually(t, 20*time.Second, "scheduled exports of an unchanged fold skipped", func() error {
		if s := a.MustMetric(t, `slipstream_exports_total{result="skipped"}`); s < skipped+2 {
			return fmt.Errorf("skipped %v (was %v)", s, skipped)
		}
		return nil
	})
	if s := a.MustMetric(t, `slipstream_exports_total{result="success"}`); s > succ+1 { // +1: one in flight
		t.Fatalf("%v exports of an unchanged fold", s-succ)
	}
	a.Terminate(t)
	// The lease was released at shutdown: the other agent takes over at once.
	proctest.Eventually(t, 10*time.Second, "the second agent exports after the first stopped", func() error {
		if code, why := postExport(t, a2); code != http.StatusAccepted {
			return fmt.Errorf("%d %s", code, why)
		}
		return nil
	})
}

// TestRunExportNotConfigured: without --export-url POST /v1/export is a 404 naming the
// flag, and GET is refused with 405.
func TestRunExportNotConfigured(t *testing.T) {
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "plain")
	a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "plain", "--data-dir", t.TempDir())
	a.WaitCaughtUp(t, b, 20*time.Second)
	if code, why := postExport(t, a); code != http.StatusNotFound || why != "exports_not_configured" {
		t.Fatalf("POST /v1/export without --export-url: %d %q", code, why)
	}
	resp, err := http.Get(a.BaseURL() + "/v1/export")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /v1/export: %d, want 405", resp.StatusCode)
	}
}
