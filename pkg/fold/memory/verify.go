package memory

import (
	"fmt"
	"os"

	"github.com/slipstream-dev/slipstream/pkg/fold"
)

// Verify re-reads the whole log from disk, checks every record's checksum and meaning, and
// compares the state it replays to with the contents served from RAM. It holds the writer
// lock meanwhile (Apply waits; reads do not). Errors: fold.ErrCorrupted with detail,
// fold.ErrClosed, wrapped I/O errors.
func (s *Store) Verify() error {
	if err := s.guard.Acquire(); err != nil {
		return err
	}
	defer s.guard.Release()
	s.mu.Lock()
	defer s.mu.Unlock()
	v, size := s.cur.Load(), s.size.Load()
	f, err := os.Open(s.path(LogName))
	if err != nil {
		return fmt.Errorf("verify memory fold store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("verify memory fold store: %w", err)
	}
	if fi.Size() != size {
		return fmt.Errorf("verify memory fold store: %w: log is %d bytes, expected %d", fold.ErrCorrupted, fi.Size(), size)
	}
	t, c, st := newTree(), counts{}, fold.State{}
	end, err := readLog(f, size, func(m fold.Mutation) { c.apply(t, m, nil) }, func(x fold.State) { st = x })
	if err != nil {
		return fmt.Errorf("verify memory fold store: %w", err)
	}
	if end != size {
		return fmt.Errorf("verify memory fold store: %w: log has %d bytes after its last complete batch", fold.ErrCorrupted, size-end)
	}
	if err := sameView(v, &view{t: t, st: st, counts: c}); err != nil {
		return fmt.Errorf("verify memory fold store: %w: log and memory differ: %w", fold.ErrCorrupted, err)
	}
	return nil
}

func sameView(a, b *view) error {
	if a.st != b.st {
		return fmt.Errorf("state %+v vs %+v", a.st, b.st)
	}
	if a.counts != b.counts || a.t.Len() != b.t.Len() {
		return fmt.Errorf("counts %+v vs %+v", a.counts, b.counts)
	}
	next, stop := iterPull(b.t)
	defer stop()
	for k, sa := range a.t.Ascend(first()) {
		kb, sb, ok := next()
		if !ok || k != kb || sa != sb {
			return fmt.Errorf("entry %q differs", k)
		}
	}
	return nil
}
