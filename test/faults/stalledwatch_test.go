package faults_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/proctest"
	"github.com/slipstream-dev/slipstream/pkg/client"
)

// stalledWatch opens GET /v1/watch on a raw connection and never reads from it (until the
// test does at the end).
func stalledWatch(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := fmt.Fprintf(c, "GET /v1/watch HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStalledWatchClient opens watch streams that never read while a writer pushes large
// values: the fold keeps up with the bucket (the agent never waits for watch readers),
// a reading watch client still gets every update in order, and the stalled streams are
// cut (the ring moved past them, or their writes timed out) instead of holding anything.
// When a stalled client finally reads, its stream does not pass for complete: it ends in
// a slow_consumer error line or is cut off mid-stream.
func TestStalledWatchClient(t *testing.T) {
	const stalled = 4
	n := harness.StartNATS(t)
	conn := proctest.Connect(t, n.URL())
	b := proctest.CreateBucket(t, conn, "stall")
	dir := filepath.Join(t.TempDir(), "fold")
	a := harness.StartAgent(t, "--nats-url", n.URL(), "--bucket", "stall", "--data-dir", dir, "--backend", "memory", "--watch-ring", "16384")
	a.WaitCaughtUp(t, b, 60*time.Second)
	conns := make([]net.Conn, stalled)
	for i := range conns {
		conns[i] = stalledWatch(t, a.Addr())
	}

	// A reading watcher: every update after its start, in revision order.
	c, err := client.New(a.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	type seen struct {
		updates, lastRev uint64
		err              error
	}
	watched := make(chan seen, 1)
	start := a.MustStatus(t).Cursor
	go func() {
		var s seen
		s.lastRev = start
		defer func() { watched <- s }()
		for ev, err := range c.Watch(wctx, "", start) {
			if err != nil {
				if wctx.Err() == nil {
					s.err = err
				}
				return
			}
			if ev.Revision <= s.lastRev {
				s.err = fmt.Errorf("revision %d after %d", ev.Revision, s.lastRev)
				return
			}
			s.lastRev = ev.Revision
			s.updates++
		}
	}()
	proctest.Eventually(t, 10*time.Second, "every watch stream open", func() error {
		if got := a.MustMetric(t, "slipstream_watch_streams"); got != stalled+1 {
			return fmt.Errorf("%v watch streams, want %d", got, stalled+1)
		}
		return nil
	})

	w := startWriter(t, b, "big.", 500, 4<<10, 0)
	var maxPending uint64
	caughtUpWhileStalled := 0
	// Rounds: the writer runs on; each round the fold must reach the stream's last
	// sequence as it was when the round began, with the stalled clients still not reading.
	for round := 0; round < 5; round++ {
		w.waitAcked(t, 1000, 60*time.Second)
		bs, err := b.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		proctest.Eventually(t, 60*time.Second, "the fold keeping up while watch clients stall", func() error {
			st, err := a.Status()
			if err != nil {
				return err
			}
			maxPending = max(maxPending, st.Pending)
			if st.Cursor < bs.LastSeq {
				return fmt.Errorf("cursor %d < %d (pending %d)", st.Cursor, bs.LastSeq, st.Pending)
			}
			return nil
		})
		caughtUpWhileStalled++
	}
	w.halt()
	final := a.WaitCaughtUp(t, b, 60*time.Second)
	proctest.Eventually(t, 60*time.Second, "the stalled streams cut", func() error {
		if got := a.MustMetric(t, "slipstream_watch_streams"); got != 1 {
			return fmt.Errorf("%v watch streams open, want 1 (the reading one)", got)
		}
		return nil
	})
	// The reading watcher saw everything up to the final cursor.
	proctest.Eventually(t, 30*time.Second, "the reading watcher at the final cursor", func() error {
		st := a.MustStatus(t)
		if st.Cursor != final.Cursor {
			return fmt.Errorf("cursor moved to %d", st.Cursor)
		}
		return nil
	})
	time.Sleep(1500 * time.Millisecond) // one progress interval: the watcher's last line
	stopWatch()
	s := <-watched
	if s.err != nil {
		t.Fatalf("reading watcher: %v", s.err)
	}
	if s.lastRev < final.Cursor {
		t.Fatalf("reading watcher at revision %d, the fold at %d", s.lastRev, final.Cursor)
	}
	// Each stalled client, reading at last, finds its stream cut short.
	var cutWithLine, cutMidStream int
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("stalled client %d: %v", i, err)
		}
		body, rerr := io.ReadAll(resp.Body)
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		var last struct{ Code string }
		switch {
		case rerr != nil: // cut off mid-stream: chunked encoding unfinished
			cutMidStream++
		case json.Unmarshal([]byte(lines[len(lines)-1]), &last) == nil && last.Code == "slow_consumer":
			cutWithLine++
		default:
			t.Fatalf("stalled client %d: stream ended cleanly without a slow_consumer line (%d lines, last %q)", i, len(lines), proctest.Tail(lines[len(lines)-1], 200))
		}
	}
	compareFold(t, b, a.Fold(t), w)
	a.Terminate(t)
	lost := compareFold(t, b, harness.DumpFold(t, dir), w)
	report(t, "stalled-watch", "stalledClients", stalled, "roundsCaughtUpWhileStalled", caughtUpWhileStalled,
		"maxPending", maxPending, "updatesWritten", w.acked.Load(), "bytesWritten", w.acked.Load()*(4<<10),
		"readingWatcherUpdates", s.updates, "cutWithSlowConsumerLine", cutWithLine, "cutMidStream", cutMidStream, "updatesLost", lost)
}
