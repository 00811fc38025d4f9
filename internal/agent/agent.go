package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-dev/slipstream/pkg/export"
	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// Runtime timings.
const (
	backoffMin      = 200 * time.Millisecond
	backoffMax      = 5 * time.Second
	healthInterval  = 2 * time.Second
	healthTimeout   = 2 * time.Second
	shutdownTimeout = 10 * time.Second
	ringMaxBytes    = 256 << 20
)

// Agent is one fold kept in sync and served: the runtime of `agent run`.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	tracker *tracker
	ring    *ring
	metrics *metrics
	api     *api
	ln      net.Listener

	store atomic.Pointer[storeRef] // what reads use; nil until open
	// storeMu is held (read) by a running export and (write) while a seed replaces the
	// store, so an export's snapshot never outlives its store.
	storeMu sync.RWMutex
	// exports runs exports (nil without --export-url); loc is the export location.
	exports *exporter
	loc     *export.Location
	// restartLoop asks runFold to restart the applied-watch loop (the bucket was
	// recreated under it: a new watch's verified resume then detects and repairs it).
	restartLoop chan struct{}
	// cluster is the in-cluster side (KVFoldNode status, export Lease); nil standalone.
	cluster *cluster
}

type storeRef struct{ s fold.Store }

// New builds the agent and binds its listener; a listen failure is a *ConfigError.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if held, err := detectBackend(cfg.DataDir); err == nil && held != cfg.Backend {
		return nil, configErrorf("--backend %s: --data-dir %q holds a %s fold (use --backend %s, or another directory)", cfg.Backend, cfg.DataDir, held, held)
	}
	a := &Agent{cfg: cfg, log: log, metrics: newMetrics(), restartLoop: make(chan struct{}, 1)}
	a.tracker = newTracker(cfg, time.Now, func(old, p Phase) {
		a.metrics.setPhase(p)
		a.log.Info("phase changed", "from", string(old), logPhase, string(p))
		if a.cluster != nil {
			a.cluster.phaseChanged()
		}
	})
	a.tracker.keys = func() (uint64, bool) {
		st, ok := a.stats()
		return st.Live, ok
	}
	a.ring = newRing(cfg.WatchRing, ringMaxBytes, 0)
	token := ""
	if cfg.TokenFile != "" {
		t, err := readToken(cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		token = t
	}
	a.metrics.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "slipstream", Name: "keys", Help: "Live keys in the fold."},
			func() float64 { st, _ := a.stats(); return float64(st.Live) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "slipstream", Name: "store_size_bytes", Help: "Size of the fold store on disk."},
			func() float64 { st, _ := a.stats(); return float64(st.DiskBytes) }),
	)
	var exportNow func(context.Context) error
	if cfg.ExportURL != "" {
		loc, err := export.OpenLocation(context.Background(), cfg.ExportURL)
		if err != nil {
			return nil, configErrorf("--export-url: %v", err)
		}
		a.loc = loc
		a.exports = &exporter{a: a, loc: loc, log: log, store: a.currentStore}
		exportNow = func(ctx context.Context) error { return a.exports.start(ctx, true) }
	}
	a.api = newAPI(apiConfig{
		Store: a.currentStore, Tracker: a.tracker, Ring: a.ring, Metrics: a.metrics,
		Scope: cfg.Prefixes, Token: token, RateLimit: cfg.RateLimit, MaxWatchers: cfg.MaxWatchers,
		Export: exportNow,
	})
	if cfg.Cluster != nil {
		k, err := newCluster(*cfg.Cluster, a, log)
		if err != nil {
			if a.loc != nil {
				_ = a.loc.Close()
			}
			return nil, err
		}
		a.cluster = k
		if a.exports != nil && k.elector != nil {
			a.exports.gate = k.elector
		}
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", cfg.Listen)
	if err != nil {
		if a.loc != nil {
			_ = a.loc.Close()
		}
		return nil, configErrorf("--listen %s: %v", cfg.Listen, errors.Unwrap(err))
	}
	a.ln = ln
	return a, nil
}

// Addr is the address the read API listens on.
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// Handler is the read API (for tests embedding the agent).
func (a *Agent) Handler() http.Handler { return a.api }

func (a *Agent) currentStore() fold.Store {
	if r := a.store.Load(); r != nil {
		return r.s
	}
	return nil
}

func (a *Agent) stats() (fold.Stats, bool) {
	s := a.currentStore()
	if s == nil {
		return fold.Stats{}, false
	}
	st, err := s.Stats()
	return st, err == nil
}

// Run serves the API and keeps the fold in sync until ctx is cancelled; then it drains the
// batch in flight, persists it, ends watch streams with a resumable final line, closes the
// store and returns nil. World conditions (NATS unreachable, bucket missing, credentials
// refused, store errors) never end Run: the agent is Degraded and retries.
func (a *Agent) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           a.api,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(a.ln) }()
	a.log.Info("read API listening", "addr", a.Addr())

	var wg sync.WaitGroup
	// The cluster side outlives the fold loop: its last status write carries the drained
	// cursor, and it releases the export Lease after the exports ended.
	var kwg sync.WaitGroup
	kctx, kcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer kcancel()
	if a.cluster != nil {
		kwg.Add(1)
		go func() {
			defer kwg.Done()
			a.cluster.run(kctx)
		}()
	}
	err := a.runFold(ctx, &wg)
	kcancel()
	kwg.Wait()

	// Shutdown: the loop has drained; end streams, stop serving, close the store.
	a.ring.close()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		a.log.Warn("read API shutdown", logError, serr)
	}
	wg.Wait()
	if a.loc != nil {
		if cerr := a.loc.Close(); cerr != nil {
			a.log.Debug("close export location", logError, cerr)
		}
	}
	if s := a.currentStore(); s != nil {
		a.store.Store(nil)
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close fold store: %w", cerr)
		}
	}
	select {
	case e := <-serveErr:
		if e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = fmt.Errorf("serve read API: %w", e)
		}
	default:
	}
	return err
}

// runFold opens the store, connects and runs the applied-watch loop until ctx ends.
func (a *Agent) runFold(ctx context.Context, wg *sync.WaitGroup) error {
	s := a.openStore(ctx)
	if s == nil {
		return nil // cancelled while opening
	}
	conn := a.connect(ctx)
	if conn == nil {
		return nil
	}
	defer func() {
		if err := conn.Close(); err != nil {
			a.log.Debug("close nats connection", logError, err)
		}
	}()
	b := a.openBucket(ctx, conn)
	if b == nil {
		return nil
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.healthLoop(ctx, conn, b)
	}()
	// An empty store starts from the newest usable export (only the tail comes from NATS).
	s, resume := a.seedEmpty(ctx, s, b)
	if s == nil {
		return nil
	}
	reseed := a.reseeder(b)
	if a.exports != nil {
		// Exports end (and release the lease) before the connection closes.
		var ewg sync.WaitGroup
		defer ewg.Wait()
		ewg.Add(1)
		go func() {
			defer ewg.Done()
			a.exports.run(ctx, conn, &ewg)
		}()
	}

	bo := newBackoff()
	for {
		obs := &observer{tracker: a.tracker, ring: a.ring, metrics: a.metrics, log: a.log}
		loop := fold.NewLoop(b, timedStore{Store: s, h: a.metrics.applyDuration}, fold.LoopConfig{
			Scope:       kv.Scope{Prefixes: a.cfg.Prefixes},
			BatchWindow: a.cfg.BatchWindow,
			BatchMax:    a.cfg.BatchMax,
			Reseed:      reseed,
			Resume:      resume,
			Observer:    obs,
			Logger:      a.log,
		})
		obs.onSeeded = func() uint64 {
			ns := loop.Store()
			a.store.Store(&storeRef{ns})
			return ns.State().Cursor
		}
		loopCtx, cancelLoop := context.WithCancel(ctx)
		go func() {
			select {
			case <-a.restartLoop:
				cancelLoop()
			case <-loopCtx.Done():
			}
		}()
		resume = nil // the loop took it, or stopped it
		st, err := loop.Run(loopCtx)
		restarted := loopCtx.Err() != nil && ctx.Err() == nil
		cancelLoop()
		s = loop.Store()
		if restarted && err == nil {
			a.log.Warn("restarting the fold loop: the bucket was recreated", logCursor, st.Cursor)
			continue
		}
		if ctx.Err() != nil {
			if ferr := s.Flush(); ferr != nil {
				a.log.Error("flush fold store at shutdown", logError, ferr)
			}
			a.log.Info("fold drained", logCursor, st.Cursor)
			return nil
		}
		// A fatal loop error: the store failed. Degraded; retry, reopening the store: a
		// store may refuse every write after a failed one (the memory log after ENOSPC,
		// whose end is unknown until it is read back), and reopening reads it back from
		// disk, cutting a torn tail (or quarantining a corrupted store).
		a.tracker.setCause(causeStore, err)
		a.log.Error("fold loop stopped; retrying", logError, err)
		if !bo.sleep(ctx) {
			return nil
		}
		a.store.Store(nil)
		_ = s.Close()
		if s = a.openStore(ctx); s == nil {
			return nil
		}
	}
}

// openStore opens the fold store, retrying with backoff while Degraded.
func (a *Agent) openStore(ctx context.Context) fold.Store {
	bo := newBackoff()
	for {
		s, err := backends.Open(a.cfg.DataDir, a.cfg.storeConfig())
		if err == nil {
			st := s.State()
			a.ring.reset(st.Cursor)
			a.store.Store(&storeRef{s})
			a.tracker.storeOpened(st)
			a.metrics.cursor.Set(float64(st.Cursor))
			a.log.Info("fold store open", "backend", a.cfg.Backend, "dir", a.cfg.DataDir, logCursor, st.Cursor)
			return s
		}
		if errors.Is(err, fold.ErrCorrupted) {
			// A corrupted fold is never served: move it aside (kept for inspection) and
			// start empty, which re-syncs the fold from NATS.
			q, qerr := quarantine(a.cfg.DataDir)
			if qerr == nil {
				a.metrics.quarantined.Inc()
				a.tracker.noteError(fmt.Errorf("fold store corrupted, moved to %s and re-synced from NATS: %w", q, err))
				a.log.Error("fold store corrupted: moved aside; re-syncing from NATS", "dir", a.cfg.DataDir, "movedTo", q, logError, err)
				continue
			}
			err = fmt.Errorf("%w (and it could not be moved aside: %v; move or delete %s to re-sync)", err, qerr, a.cfg.DataDir)
		}
		a.tracker.setCause(causeStore, fmt.Errorf("open fold store: %w", err))
		a.log.Error("open fold store; retrying", "dir", a.cfg.DataDir, logError, err)
		if !bo.sleep(ctx) {
			return nil
		}
	}
}

// quarantine renames a corrupted store directory to <dir>.corrupted-<time>.
func quarantine(dir string) (string, error) {
	q := fmt.Sprintf("%s.corrupted-%s", filepath.Clean(dir), time.Now().UTC().Format("20060102T150405.000Z"))
	if err := os.Rename(dir, q); err != nil {
		return "", err
	}
	return q, nil
}

// connect connects to NATS, retrying with backoff while Degraded.
func (a *Agent) connect(ctx context.Context) *kv.Conn {
	bo := newBackoff()
	for {
		opts, err := a.cfg.connectOptions() // reads the credential files (rotated Secrets)
		var conn *kv.Conn
		if err == nil {
			opts.Name = "slipstream-agent/" + a.cfg.Bucket
			opts.ConnectTimeout, opts.DrainTimeout, opts.Logger = 2*time.Second, 3*time.Second, a.log
			conn, err = kv.Connect(ctx, opts)
		}
		if err == nil {
			a.tracker.clearCause(causeConnect)
			a.log.Info("connected to nats")
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		a.tracker.setCause(causeConnect, err)
		a.log.Warn("connect to nats failed; retrying", logError, err)
		if !bo.sleep(ctx) {
			return nil
		}
	}
}

// openBucket opens the bucket, retrying with backoff while it is missing.
func (a *Agent) openBucket(ctx context.Context, conn *kv.Conn) *kv.Bucket {
	bo := newBackoff()
	for {
		b, err := conn.Bucket(ctx, a.cfg.Bucket)
		if err == nil {
			a.tracker.clearCause(causeBucket)
			return b
		}
		if ctx.Err() != nil {
			return nil
		}
		if isNotFound(err) {
			err = fmt.Errorf("bucket %q not found: %w", a.cfg.Bucket, err)
		}
		a.tracker.setCause(causeBucket, err)
		a.log.Warn("open bucket failed; retrying", logBucket, a.cfg.Bucket, logError, err)
		if !bo.sleep(ctx) {
			return nil
		}
	}
}

// healthLoop checks the bucket every healthInterval so a lost server or a deleted bucket
// turns the agent Degraded within seconds even when no update flows.
func (a *Agent) healthLoop(ctx context.Context, conn *kv.Conn, b *kv.Bucket) {
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	var created time.Time // the bucket's stream creation time, as first seen
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		cctx, cancel := context.WithTimeout(ctx, healthTimeout)
		st, err := b.Status(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !conn.Connected() {
				err = fmt.Errorf("nats disconnected: %w", err)
			}
			a.tracker.setCause(causeHealth, err)
			continue
		}
		if cur := a.tracker.cursor(); (!created.IsZero() && !st.Created.Equal(created)) || st.LastSeq < cur {
			// Deleted and recreated: the running watch follows a stream that is gone.
			a.tracker.noteError(fmt.Errorf("bucket %q was recreated (stream last sequence %d, fold cursor %d): re-syncing", a.cfg.Bucket, st.LastSeq, cur))
			a.log.Warn("bucket recreated under the fold; restarting the watch", logBucket, a.cfg.Bucket, "streamLast", st.LastSeq, logCursor, cur)
			select {
			case a.restartLoop <- struct{}{}:
			default:
			}
		}
		created = st.Created
		a.tracker.clearCause(causeHealth)
		a.tracker.setStreamLast(st.LastSeq)
		a.metrics.streamLast.Set(float64(st.LastSeq))
	}
}

// backoff is a jittered exponential backoff.
type backoff struct{ d, max time.Duration }

func newBackoff() *backoff { return &backoff{d: backoffMin, max: backoffMax} }

// next returns the next delay (jitter between d/2 and d) and doubles d up to max.
func (b *backoff) next() time.Duration {
	d := b.d/2 + rand.N(b.d/2+1)
	b.d = min(2*b.d, b.max)
	return d
}

// reset starts the delays from the minimum again.
func (b *backoff) reset() { b.d = backoffMin }

// sleep waits the next delay; false when ctx ended.
func (b *backoff) sleep(ctx context.Context) bool {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
