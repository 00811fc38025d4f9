package kv

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configures Connect. Credentials are chosen by priority, first match wins:
// CredsData (inline .creds content) > CredsFile > user:password in the URLs > none.
// NKeySeedFile and Token are alternatives to those and cannot be combined with them.
type Options struct {
	// URLs of the servers (nats:// or tls://). At least one is required.
	URLs []string
	// Name is the client name the server shows in its monitoring (default "slipstream").
	Name string

	// CredsData is the content of a .creds file (JWT + NKey seed), base64-encoded, as it
	// arrives from a Kubernetes Secret passed through an environment variable.
	CredsData string
	// CredsFile is the path of a .creds file. It is re-read on every (re)connect, so a
	// rotated Secret is picked up without a restart.
	CredsFile string
	// NKeySeedFile is the path of a file holding an NKey user seed.
	NKeySeedFile string
	// Token is an authentication token.
	Token string

	TLS TLSOptions

	// ConnectTimeout bounds each connection attempt (default 5s).
	ConnectTimeout time.Duration
	// ReconnectWait is the first reconnect delay; it doubles per failed attempt up to
	// MaxReconnectWait (defaults 100ms and 5s), with jitter. Reconnects never give up.
	ReconnectWait    time.Duration
	MaxReconnectWait time.Duration
	// RetryOnFailedConnect makes Connect succeed even when no server is reachable yet; the
	// connection is then established in the background (default: Connect fails).
	RetryOnFailedConnect bool
	// DrainTimeout bounds Close (default 10s).
	DrainTimeout time.Duration
	// PingInterval is how often the client pings the server (default 5s). A connection
	// that leaves two pings unanswered is closed and re-established, so a peer that went
	// away without a close (a half-open TCP connection after a partition, a NAT or
	// conntrack entry dropped) is noticed within about three intervals instead of the
	// nats.go default of minutes.
	PingInterval time.Duration
	// Logger receives connection events (never credentials). Default: slog.Default().
	Logger *slog.Logger
}

// TLSOptions configures TLS. Setting any file turns TLS on.
type TLSOptions struct {
	CAFile   string // PEM bundle of CAs to verify the server with
	CertFile string // client certificate (PEM), requires KeyFile
	KeyFile  string // client key (PEM), requires CertFile
	// HandshakeFirst performs the TLS handshake before the NATS INFO exchange (servers
	// configured with handshake_first).
	HandshakeFirst bool
}

func (o TLSOptions) enabled() bool {
	return o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" || o.HandshakeFirst
}

// Log attribute keys.
const (
	logKeyURL = "url"
	logKeyErr = "err"
)

// Conn is a connection to NATS with JetStream. It is safe for concurrent use.
type Conn struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	log    *slog.Logger
	drain  time.Duration
	closed chan struct{}

	mu         sync.Mutex
	lastErr    error
	reconnects atomic.Uint64
	closeOnce  sync.Once
	closeErr   error
}

// Status is a snapshot of a connection's health.
type Status struct {
	Connected  bool
	URL        string // connected server, credentials redacted; empty when disconnected
	Reconnects uint64
	// LastError is the most recent asynchronous error or disconnect reason (nil if none).
	LastError error
	// ServerVersion of the connected server.
	ServerVersion string
}

// Connect connects to NATS as configured. Without RetryOnFailedConnect, an unreachable
// server fails with an error wrapping ErrNotConnected; rejected credentials wrap
// ErrPermissionDenied; bad options wrap ErrInvalidConfig.
func Connect(ctx context.Context, o Options) (*Conn, error) {
	nopts, urls, err := o.natsOptions()
	if err != nil {
		return nil, err
	}
	c := &Conn{log: o.Logger, drain: o.DrainTimeout, closed: make(chan struct{})}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.drain <= 0 {
		c.drain = 10 * time.Second
	}
	nopts = append(nopts,
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				c.setErr(err)
				c.log.Warn("nats disconnected", logKeyErr, err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.reconnects.Add(1)
			c.log.Info("nats reconnected", logKeyURL, nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			c.setErr(err)
			c.log.Warn("nats async error", logKeyErr, err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) }),
	)
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(strings.Join(urls, ","), nopts...)
		done <- result{nc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect to nats: %w", ctx.Err())
	}
	if r.err != nil {
		s := sentinelFor(r.err)
		if s == nil || errors.Is(s, ErrClosed) {
			s = ErrNotConnected
		}
		if errors.Is(r.err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(r.err.Error()), "authorization") {
			s = ErrPermissionDenied
		}
		return nil, fmt.Errorf("connect to nats: %w: %w", s, r.err)
	}
	c.nc = r.nc
	c.js, err = jetstream.New(r.nc)
	if err != nil {
		r.nc.Close()
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	return c, nil
}

func (c *Conn) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// natsOptions validates o and translates it into nats.go options and the URL list.
func (o Options) natsOptions() ([]nats.Option, []string, error) {
	if len(o.URLs) == 0 {
		return nil, nil, fmt.Errorf("%w: no NATS URL given", ErrInvalidConfig)
	}
	creds := o.CredsData != "" || o.CredsFile != ""
	if o.NKeySeedFile != "" && creds {
		return nil, nil, fmt.Errorf("%w: nkey seed file and creds are exclusive: choose one", ErrInvalidConfig)
	}
	if o.Token != "" && (creds || o.NKeySeedFile != "") {
		return nil, nil, fmt.Errorf("%w: token cannot be combined with creds or an nkey seed", ErrInvalidConfig)
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		return nil, nil, fmt.Errorf("%w: tls client certificate and key must be given together", ErrInvalidConfig)
	}
	explicitAuth := creds || o.NKeySeedFile != "" || o.Token != ""
	urls := make([]string, 0, len(o.URLs))
	var userInfo *url.Userinfo
	for i, raw := range o.URLs {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" {
			// Never echo the URL: it may carry a password.
			return nil, nil, fmt.Errorf("%w: URL %d is not a valid NATS URL", ErrInvalidConfig, i)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, nil, fmt.Errorf("%w: URL %d has unsupported scheme %q (want nats, tls, ws or wss)", ErrInvalidConfig, i, u.Scheme)
		}
		if u.User != nil {
			if userInfo != nil && userInfo.String() != u.User.String() {
				return nil, nil, fmt.Errorf("%w: URLs carry different user credentials", ErrInvalidConfig)
			}
			userInfo = u.User
			if explicitAuth {
				// Higher-priority credentials win: do not also send the URL's.
				u.User = nil
			}
		}
		urls = append(urls, u.String())
	}
	if o.Token != "" && userInfo != nil {
		return nil, nil, fmt.Errorf("%w: token cannot be combined with user credentials in the URL", ErrInvalidConfig)
	}

	name := o.Name
	if name == "" {
		name = "slipstream"
	}
	wait, maxWait := o.ReconnectWait, o.MaxReconnectWait
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ping := o.PingInterval
	if ping <= 0 {
		ping = 5 * time.Second
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.Timeout(timeout),
		nats.CustomReconnectDelay(backoff(wait, maxWait)),
		nats.PingInterval(ping),
		nats.MaxPingsOutstanding(2),
		nats.RetryOnFailedConnect(o.RetryOnFailedConnect),
		// Keep publishes made while reconnecting bounded; callers get errors, not unbounded RAM.
		nats.ReconnectBufSize(8 << 20),
	}
	switch {
	case o.CredsData != "":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(o.CredsData))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: inline creds are not valid base64", ErrInvalidConfig)
		}
		if !strings.Contains(string(raw), "NATS USER JWT") {
			return nil, nil, fmt.Errorf("%w: inline creds do not contain a NATS user JWT", ErrInvalidConfig)
		}
		opts = append(opts, nats.UserCredentialBytes(raw))
	case o.CredsFile != "":
		if _, err := os.Stat(o.CredsFile); err != nil {
			return nil, nil, fmt.Errorf("%w: creds file: %w", ErrInvalidConfig, err)
		}
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	case o.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKeySeedFile)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: nkey seed file: %w", ErrInvalidConfig, err)
		}
		opts = append(opts, opt)
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	}
	if o.TLS.enabled() {
		for _, f := range []string{o.TLS.CAFile, o.TLS.CertFile, o.TLS.KeyFile} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				return nil, nil, fmt.Errorf("%w: tls file: %w", ErrInvalidConfig, err)
			}
		}
		if o.TLS.CAFile != "" {
			opts = append(opts, nats.RootCAs(o.TLS.CAFile))
		}
		if o.TLS.CertFile != "" {
			opts = append(opts, nats.ClientCert(o.TLS.CertFile, o.TLS.KeyFile))
		}
		if o.TLS.HandshakeFirst {
			opts = append(opts, nats.TLSHandshakeFirst())
		}
	}
	return opts, urls, nil
}

// backoff returns a reconnect delay function: exponential from base to max with up to 20%
// jitter, so a fleet of agents does not reconnect in lock step.
func backoff(base, maxWait time.Duration) nats.ReconnectDelayHandler {
	return func(attempts int) time.Duration {
		d := base
		for i := 1; i < attempts && d < maxWait; i++ {
			d *= 2
		}
		d = min(d, maxWait)
		return d + time.Duration(rand.Int64N(int64(d)/5+1))
	}
}

// NATS returns the underlying nats.go connection (for advanced use and tests).
func (c *Conn) NATS() *nats.Conn { return c.nc }

// JetStream returns the underlying jetstream context.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Connected reports whether the connection is currently established.
func (c *Conn) Connected() bool { return c.nc.IsConnected() }

// Status returns a snapshot of the connection's health.
func (c *Conn) Status() Status {
	c.mu.Lock()
	last := c.lastErr
	c.mu.Unlock()
	s := Status{Connected: c.nc.IsConnected(), Reconnects: c.reconnects.Load(), LastError: last}
	if s.Connected {
		s.URL = c.nc.ConnectedUrlRedacted()
		s.ServerVersion = c.nc.ConnectedServerVersion()
	}
	return s
}

// Close drains the connection (in-flight messages are processed, pending publishes flushed)
// and waits for it to close, at most DrainTimeout. Further calls return the first result.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if c.nc.IsClosed() {
			return
		}
		if err := c.nc.Drain(); err != nil {
			c.nc.Close()
			c.closeErr = fmt.Errorf("drain nats connection: %w", err)
			return
		}
		t := time.NewTimer(c.drain)
		defer t.Stop()
		select {
		case <-c.closed:
		case <-t.C:
			c.nc.Close()
			c.closeErr = fmt.Errorf("drain nats connection: timed out after %s", c.drain)
		}
	})
	return c.closeErr
}
