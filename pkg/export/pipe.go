package export

import (
	"io"
	"sync"
)

// pipeWriter hands writes to a goroutine so that producing the next frame (reading the
// fold, encoding) overlaps writing the previous one (syscalls, the object store client's
// hashing and buffering). Write copies p (io.Writer contract) into one of a few
// recycled buffers.
type pipeWriter struct {
	w    io.Writer
	full chan []byte
	free chan []byte
	done chan struct{}

	mu  sync.Mutex
	err error
}

func newPipeWriter(w io.Writer, buffers int) *pipeWriter {
	p := &pipeWriter{w: w, full: make(chan []byte, buffers), free: make(chan []byte, buffers), done: make(chan struct{})}
	for range buffers {
		p.free <- nil
	}
	go p.run()
	return p
}

func (p *pipeWriter) run() {
	defer close(p.done)
	for b := range p.full {
		if p.failed() == nil {
			if _, err := p.w.Write(b); err != nil {
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
			}
		}
		p.free <- b[:0]
	}
}

func (p *pipeWriter) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Write queues a copy of b; it returns the error of an earlier write, if any.
func (p *pipeWriter) Write(b []byte) (int, error) {
	if err := p.failed(); err != nil {
		return 0, err
	}
	buf := append(<-p.free, b...)
	p.full <- buf
	return len(b), nil
}

// Close waits until everything queued is written and returns the first write error.
// Call it exactly once.
func (p *pipeWriter) Close() error {
	close(p.full)
	<-p.done
	return p.failed()
}
