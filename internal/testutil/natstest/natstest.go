package natstest

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyTimeout bounds how long Start and Restart wait for the server to accept connections.
const readyTimeout = 10 * time.Second

// Server is an embedded nats-server with JetStream enabled.
type Server struct {
	mu       sync.Mutex
	srv      *server.Server
	opts     server.Options
	storeDir string
}

// Options tweaks the embedded server. The zero value is what Start uses.
type Options struct {
	// Configure, when set, is called with the server options before start (e.g. to add
	// authorization or TLS). Host, Port, JetStream and StoreDir are already filled in.
	Configure func(o *server.Options)
}

// Start starts a JetStream-enabled nats-server on a random 127.0.0.1 port with a temporary
// store directory. It fails the test if the server does not become ready. The server is
// shut down when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := newServer(t.TempDir(), o)
	if err != nil {
		t.Fatalf("natstest: start server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// StartDir starts a server storing JetStream data in dir, without a test to clean up
// after it (for benchmark fixtures shared across runs). The caller calls Shutdown.
func StartDir(dir string, o Options) (*Server, error) {
	return newServer(dir, o)
}

func newServer(dir string, o Options) (*Server, error) {
	s := &Server{storeDir: dir}
	s.opts = server.Options{
		Host:                  "127.0.0.1",
		Port:                  server.RANDOM_PORT,
		JetStream:             true,
		StoreDir:              s.storeDir,
		NoLog:                 true,
		NoSigs:                true,
		MaxPayload:            8 << 20,
		DisableShortFirstPing: true,
	}
	if o.Configure != nil {
		o.Configure(&s.opts)
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	// Pin the port the server picked so Restart comes back on the same address.
	addr := s.srv.Addr().(*net.TCPAddr)
	s.opts.Port = addr.Port
	return s, nil
}

func (s *Server) start() error {
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("new server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		return fmt.Errorf("server not ready within %s", readyTimeout)
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	return nil
}

// URL returns the client URL, e.g. nats://127.0.0.1:4222.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// Addr returns host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// StoreDir returns the JetStream store directory.
func (s *Server) StoreDir() string { return s.storeDir }

// NATS returns the running server (nil after Shutdown).
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Shutdown stops the server and waits for it to finish. It is safe to call more than once.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

// Restart stops the server (if running) and starts it again on the same port with the same
// store directory, failing the test if it does not come back.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Shutdown()
	var err error
	// The port can take a moment to be released; retry with a deadline.
	deadline := time.Now().Add(readyTimeout)
	for {
		if err = s.start(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: restart server: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // back-off between bind attempts, not synchronisation
	}
}

// Conn connects a plain nats.go client to the server; it is closed when the test ends.
// The client reconnects forever, so it survives Restart.
func (s *Server) Conn(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	all := append([]nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
	}, opts...)
	nc, err := nats.Connect(s.URL(), all...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
