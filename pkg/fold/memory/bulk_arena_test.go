package memory

import (
	"bytes"
	"fmt"
	"testing"
)

// Entries carved from the arena read back exactly as newEntry lays them out, whatever their
// size (blocks filled to the edge, entries that get their own allocation), and carving
// later ones never touches earlier ones.
func TestEntryArena(t *testing.T) {
	type made struct {
		key   string
		rev   uint64
		live  bool
		value []byte
		k     string
		s     slot
	}
	var a entryArena
	var all []made
	for i := range 3000 {
		size := (i * 97) % 900
		if i%500 == 7 {
			size = arenaBlock/4 + i // its own allocation
		}
		m := made{key: fmt.Sprintf("key.%06d", i), rev: uint64(i + 1), live: i%5 != 0, value: bytes.Repeat([]byte{byte(i)}, size)}
		if !m.live {
			m.value = nil
		}
		m.k, m.s = a.newEntry(m.key, m.rev, m.live, m.value)
		all = append(all, m)
	}
	for _, m := range all {
		wk, ws := newEntry(m.key, m.rev, m.live, m.value)
		if m.k != wk || m.s != ws {
			t.Fatalf("entry %q: arena made %q/%q, want %q/%q", m.key, m.k, m.s, wk, ws)
		}
		if m.s.rev() != m.rev || m.s.live() != m.live || m.s.valLen() != len(m.value) {
			t.Fatalf("entry %q: slot says rev %d live %v %d bytes", m.key, m.s.rev(), m.s.live(), m.s.valLen())
		}
	}
}
