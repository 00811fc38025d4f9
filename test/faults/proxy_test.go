package faults_test

import (
	"net"
	"sync"
	"testing"
)

// partition is what the proxy does to the traffic between the agent and NATS.
type partition int

const (
	healed partition = iota
	// dropConns resets every connection and refuses new ones (accepts, then resets).
	dropConns
	// blackhole keeps connections and accepts new ones but forwards nothing either way;
	// what was held back flows again when healed, like a network that dropped packets.
	blackhole
	// upOnly forwards agent -> NATS only: the agent's requests arrive, no reply comes back.
	upOnly
	// downOnly forwards NATS -> agent only: the agent's requests are held back.
	downOnly
	// halfOpen closes the NATS side of every connection but keeps the agent's side open,
	// swallowing what it sends and never answering: the agent sees no close and must find
	// out by itself that the connection is dead. Connections made meanwhile get the same.
	// Healing lets new connections through; the dead ones stay dead.
	halfOpen
)

func (p partition) String() string {
	return [...]string{"healed", "drop", "blackhole", "half-open-up-only", "half-open-down-only", "half-open-dead-peer"}[p]
}

// proxy is a TCP proxy on 127.0.0.1 between the agent and nats-server that the test can
// partition in the ways above.
type proxy struct {
	t        testing.TB
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	cond     *sync.Cond
	mode     partition
	conns    map[*proxyConn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn
	dead           bool // halfOpen: the server side is closed, the client side swallowed
}

func startProxy(t testing.TB, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, upstream: upstream, conns: map[*proxyConn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		switch mode {
		case dropConns:
			reset(c)
			continue
		case halfOpen:
			pc := &proxyConn{client: c, dead: true}
			p.track(pc)
			p.wg.Add(1)
			go p.swallow(pc)
			continue
		}
		s, err := net.Dial("tcp", p.upstream)
		if err != nil {
			reset(c)
			continue
		}
		pc := &proxyConn{client: c, server: s}
		p.track(pc)
		p.wg.Add(2)
		go p.pump(pc, false)
		go p.pump(pc, true)
	}
}

func (p *proxy) track(pc *proxyConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[pc] = struct{}{}
}

// reset closes c with an RST (no lingering FIN handshake), as a dropped connection looks.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// held reports whether traffic in one direction must wait (p.mu held).
func (p *proxy) held(up bool) bool {
	switch p.mode {
	case blackhole:
		return true
	case upOnly:
		return !up
	case downOnly:
		return up
	}
	return false
}

// pump copies one direction of pc (up: agent -> NATS), waiting while the partition holds
// that direction back.
func (p *proxy) pump(pc *proxyConn, up bool) {
	defer p.wg.Done()
	src, dst := pc.server, pc.client
	if up {
		src, dst = pc.client, pc.server
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.held(up) && !p.closed && !pc.dead {
				p.cond.Wait()
			}
			dead, closed := pc.dead, p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			if dead {
				if up {
					continue // swallowed
				}
				return // the server side is gone; the client side stays open
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			p.mu.Lock()
			dead := pc.dead
			p.mu.Unlock()
			switch {
			case !dead:
				reset(pc.client)
				_ = pc.server.Close()
			case up: // the agent closed its side of a dead-peer connection
				_ = pc.client.Close()
			}
			return
		}
	}
}

// swallow reads and discards what the agent sends on a dead-peer connection.
func (p *proxy) swallow(pc *proxyConn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		if _, err := pc.client.Read(buf); err != nil {
			return
		}
	}
}

// set changes the partition; existing connections are reset (dropConns) or turned into
// dead peers (halfOpen).
func (p *proxy) set(mode partition) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
	for pc := range p.conns {
		switch mode {
		case dropConns:
			reset(pc.client)
			if pc.server != nil {
				_ = pc.server.Close()
			}
			delete(p.conns, pc)
		case halfOpen:
			if !pc.dead {
				pc.dead = true
				_ = pc.server.Close()
			}
		}
	}
	p.cond.Broadcast()
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	for pc := range p.conns {
		_ = pc.client.Close()
		if pc.server != nil {
			_ = pc.server.Close()
		}
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}
