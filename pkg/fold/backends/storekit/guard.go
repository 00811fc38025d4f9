package storekit

import (
	"sync"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// Guard counts operations in flight so that Close can wait for them, and rejects new ones
// with fold.ErrClosed once Close has begun. The zero value is open.
type Guard struct {
	mu     sync.Mutex
	cond   sync.Cond
	n      int
	closed bool
}

// Acquire registers an operation; it returns fold.ErrClosed after Close began.
func (g *Guard) Acquire() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return fold.ErrClosed
	}
	g.n++
	return nil
}

// Release ends an operation registered by Acquire.
func (g *Guard) Release() {
	g.mu.Lock()
	g.n--
	if g.n == 0 && g.cond.L != nil {
		g.cond.Broadcast()
	}
	g.mu.Unlock()
}

// Close rejects new operations and waits for those in flight. It reports whether this call
// closed the guard (false: it was already closed). An operation must not call Close on its
// own guard (for example from inside a Range loop): it would wait for itself.
func (g *Guard) Close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	if g.cond.L == nil {
		g.cond.L = &g.mu
	}
	for g.n > 0 {
		g.cond.Wait()
	}
	return true
}

// Closed reports whether Close has begun.
func (g *Guard) Closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}
