package storekit

import (
	"sync"
	"sync/atomic"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// closedBit marks, in Guard.state, that Close has begun.
const closedBit = int64(1) << 62

// Guard counts operations in flight so that Close can wait for them, and rejects new ones
// with fold.ErrClosed once Close has begun. The zero value is open.
//
// Acquire and Release are one atomic add each: concurrent readers (the agent's HTTP API)
// do not queue on a lock. The mutex is taken only by Close and by the Release that ends
// the last operation once Close waits.
type Guard struct {
	state atomic.Int64 // operations in flight, plus closedBit once Close began
	mu    sync.Mutex
	cond  sync.Cond
}

// Acquire registers an operation; it returns fold.ErrClosed after Close began.
func (g *Guard) Acquire() error {
	if g.state.Add(1)&closedBit != 0 {
		g.Release()
		return fold.ErrClosed
	}
	return nil
}

// Release ends an operation registered by Acquire.
func (g *Guard) Release() {
	if g.state.Add(-1) == closedBit {
		// The last operation Close may wait for. Close checks the count and waits under
		// mu, so taking it here cannot slip between the two.
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	}
}

// Close rejects new operations and waits for those in flight. It reports whether this call
// closed the guard (false: it was already closed). An operation must not call Close on its
// own guard (for example from inside a Range loop): it would wait for itself.
func (g *Guard) Close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond.L == nil {
		g.cond.L = &g.mu
	}
	for {
		s := g.state.Load()
		if s&closedBit != 0 {
			return false
		}
		if g.state.CompareAndSwap(s, s|closedBit) {
			break
		}
	}
	for g.state.Load() != closedBit {
		g.cond.Wait()
	}
	return true
}

// Closed reports whether Close has begun.
func (g *Guard) Closed() bool { return g.state.Load()&closedBit != 0 }
