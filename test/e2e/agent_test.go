package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/slipstream-dev/slipstream/pkg/client"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// line is one key of a fold or bucket, as `agent dump` prints it.
type line struct {
	Key      string `json:"key"`
	Value    []byte `json:"value"`
	Revision uint64 `json:"revision"`
}

// connect opens a NATS KV connection that rides out server restarts.
func connect(url string) *kv.Conn {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	c, err := kv.Connect(ctx, kv.Options{URLs: []string{url}, Name: "e2e", ReconnectWait: 50 * time.Millisecond, MaxReconnectWait: 500 * time.Millisecond})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = c.Close() })
	return c
}

// putN writes n keys prefix+NNNN with values that name their round.
func putN(b *kv.Bucket, prefix string, n int, round string) {
	GinkgoHelper()
	for i := range n {
		_, err := b.Put(bg, fmt.Sprintf("%s%04d", prefix, i), []byte(fmt.Sprintf(`{"round":%q,"i":%d}`, round, i)))
		Expect(err).NotTo(HaveOccurred())
	}
}

// inScope reports whether key is in prefixes (all keys when there are none).
func inScope(key string, prefixes []string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// bucketState is the bucket's live keys within prefixes, ordered by key.
func bucketState(b *kv.Bucket, prefixes []string) []line {
	GinkgoHelper()
	var out []line
	for e, err := range b.Scan(bg, "") {
		Expect(err).NotTo(HaveOccurred())
		if e.Op == kv.OpPut && inScope(e.Key, prefixes) {
			out = append(out, line{Key: e.Key, Value: e.Value, Revision: e.Revision})
		}
	}
	slices.SortFunc(out, func(a, b line) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// sameLines reports the first difference between two ordered states.
func sameLines(want, got []line) error {
	for i := range max(len(want), len(got)) {
		switch {
		case i >= len(got):
			return fmt.Errorf("fold lacks %q (rev %d) and %d more (bucket %d keys, fold %d)", want[i].Key, want[i].Revision, len(want)-i-1, len(want), len(got))
		case i >= len(want):
			return fmt.Errorf("fold has extra %q (rev %d) and %d more (bucket %d keys, fold %d)", got[i].Key, got[i].Revision, len(got)-i-1, len(want), len(got))
		case want[i].Key != got[i].Key || want[i].Revision != got[i].Revision || !bytes.Equal(want[i].Value, got[i].Value):
			return fmt.Errorf("key %d: bucket %q rev %d, fold %q rev %d", i, want[i].Key, want[i].Revision, got[i].Key, got[i].Revision)
		}
	}
	return nil
}

func (f *fold) client() *client.Client {
	GinkgoHelper()
	c, err := client.New(f.apiURL())
	Expect(err).NotTo(HaveOccurred())
	return c
}

// status is the agent's /v1/status.
func (f *fold) status() (client.Status, error) {
	ctx, cancel := context.WithTimeout(bg, 3*time.Second)
	defer cancel()
	return f.client().Status(ctx)
}

// readAPIState lists the whole fold through the read API (one snapshot per prefix).
func (f *fold) readAPIState() ([]line, error) {
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	prefixes := f.prefixes
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	var out []line
	for _, p := range prefixes {
		l, err := f.client().List(ctx, p)
		if err != nil {
			return nil, err
		}
		for e, err := range l.All() {
			if err != nil {
				_ = l.Close()
				return nil, err
			}
			out = append(out, line{Key: e.Key, Value: e.Value, Revision: e.Revision})
		}
		_ = l.Close()
	}
	slices.SortFunc(out, func(a, b line) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// caughtUp waits until the agent is Live at the bucket's last sequence and its read API
// serves exactly the bucket (within scope).
func (f *fold) caughtUp(b *kv.Bucket, within time.Duration) client.Status {
	GinkgoHelper()
	var st client.Status
	Eventually(func() error {
		bs, err := b.Status(bg)
		if err != nil {
			return err
		}
		if st, err = f.status(); err != nil {
			return err
		}
		// A scoped fold's cursor stops at its last update in scope: "caught up" is having
		// seen the stream's last sequence with nothing pending.
		if st.Phase != "Live" || st.StreamLastSequence < bs.LastSeq || st.Pending != 0 || (len(f.prefixes) == 0 && st.Cursor < bs.LastSeq) {
			return fmt.Errorf("agent %s at cursor %d (pending %d, stream last seen %d), stream last %d (lastError %q)",
				st.Phase, st.Cursor, st.Pending, st.StreamLastSequence, bs.LastSeq, st.LastError)
		}
		got, err := f.readAPIState()
		if err != nil {
			return err
		}
		return sameLines(bucketState(b, f.prefixes), got)
	}, within).Should(Succeed(), "the agent of %s to serve exactly the bucket", f.name)
	return st
}

// dump runs `agent dump` on the fold's host directory (the agent must be stopped: the
// store is locked while it runs).
func (f *fold) dump() []line {
	GinkgoHelper()
	out, err := run(suite.root, suite.agentBin, "dump", "--data-dir", f.storeDir())
	Expect(err).NotTo(HaveOccurred())
	var lines []line
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var l line
		Expect(dec.Decode(&l)).To(Succeed(), "agent dump output")
		lines = append(lines, l)
	}
	return lines
}

// metrics scrapes the agent's /metrics into series -> value, plus the set of families.
func scrape(base string) (map[string]float64, map[string]bool, error) {
	ctx, cancel := context.WithTimeout(bg, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	series, families := map[string]float64{}, map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		t := sc.Text()
		if rest, ok := strings.CutPrefix(t, "# TYPE "); ok {
			families[strings.Fields(rest)[0]] = true
			continue
		}
		if t == "" || t[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(t, ' ')
		v, err := strconv.ParseFloat(t[i+1:], 64)
		if err != nil {
			return nil, nil, fmt.Errorf("metrics line %q: %w", t, err)
		}
		series[t[:i]] = v
	}
	return series, families, sc.Err()
}

// counter is a counter series of the agent: a labelled series that never counted is absent
// from the exposition, so it reads 0, but only if its family is exposed at all (a typo in
// the name fails instead of reading 0).
func (f *fold) counter(series string) (float64, error) {
	s, fam, err := scrape(f.apiURL())
	if err != nil {
		return 0, err
	}
	name, _, _ := strings.Cut(series, "{")
	if !fam[name] {
		return 0, fmt.Errorf("metric family %s is not exposed", name)
	}
	return s[series], nil
}

// writer keeps writing to a bucket in the background (puts of a rotating key set, a delete
// every tenth write) until stopped.
type writer struct {
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
	writes   atomic.Int64
	err      atomic.Value
}

func startWriter(b *kv.Bucket, prefix string, keys int, perSecond int) *writer {
	w := &writer{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(w.done)
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-w.stopCh:
				return
			case <-tick.C:
			}
			key := fmt.Sprintf("%s%04d", prefix, i%keys)
			var err error
			if i%10 == 9 {
				_, err = b.Delete(bg, key)
			} else {
				_, err = b.Put(bg, key, []byte(fmt.Sprintf(`{"write":%d}`, i)))
			}
			if err != nil {
				// NATS may be restarting under the writer: count, do not fail here.
				w.err.Store(err.Error())
				continue
			}
			w.writes.Add(1)
		}
	}()
	return w
}

func (w *writer) stop() int64 {
	w.stopOnce.Do(func() { close(w.stopCh) })
	<-w.done
	return w.writes.Load()
}
