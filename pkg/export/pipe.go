package export

import (
	"io"
	"sync"

	"github.com/slipstream-dev/slipstream/pkg/fold/backends/storekit"
)

// frameBufCap is the capacity of a frame buffer: a full records frame and its overhead.
const frameBufCap = targetFramePayload + 64<<10

// bufPool recycles frame buffers among the goroutines of Write: frames are handed from
// the range readers to the writer and to the pipe by ownership, never copied, and come
// back here once written.
type bufPool chan []byte

func newBufPool(n int) bufPool { return make(bufPool, n) }

// get returns an empty buffer of frameBufCap, recycled when one is free.
func (p bufPool) get() []byte {
	select {
	case b := <-p:
		return b[:0]
	default:
		return make([]byte, 0, frameBufCap)
	}
}

// put recycles b (dropped when the pool is full, or when b is a small one-off buffer or
// one grown for a large record).
func (p bufPool) put(b []byte) {
	if cap(b) < frameBufCap || cap(b) > 2*frameBufCap {
		return
	}
	select {
	case p <- b:
	default:
	}
}

// pipeWriter hands buffers to a goroutine that writes them, so that producing the next
// frame (reading the fold, encoding, checksumming) overlaps writing the previous one
// (syscalls, the object store client). Buffers are passed by ownership: send takes b and
// recycles it into pool once written.
type pipeWriter struct {
	w    io.Writer
	pool bufPool
	wb   *storekit.WriteBehind // nil unless the destination is a local file
	full chan []byte
	done chan struct{}

	mu  sync.Mutex
	err error
}

func newPipeWriter(w io.Writer, pool bufPool, wb *storekit.WriteBehind, depth int) *pipeWriter {
	p := &pipeWriter{w: w, pool: pool, wb: wb, full: make(chan []byte, depth), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *pipeWriter) run() {
	defer close(p.done)
	for b := range p.full {
		if p.failed() == nil {
			_, err := p.w.Write(b)
			if err == nil && p.wb != nil {
				err = p.wb.Wrote(len(b))
			}
			if err != nil {
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
			}
		}
		p.pool.put(b)
	}
}

func (p *pipeWriter) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// send queues b for writing and takes ownership of it; it returns the error of an earlier
// write, if any (b is then dropped).
func (p *pipeWriter) send(b []byte) error {
	if err := p.failed(); err != nil {
		return err
	}
	p.full <- b
	return nil
}

// Close waits until everything queued is written and returns the first write error.
// Call it exactly once.
func (p *pipeWriter) Close() error {
	close(p.full)
	<-p.done
	return p.failed()
}
