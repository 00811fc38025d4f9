package pebble

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// movableFS is the file system Pebble runs on: it maps the paths under the directory the
// store was opened in to where that directory is now. Relocate renames the directory while
// the store stays open (a staged export becomes the fold without a close and a reopen,
// which would start with cold caches); calls that name a path hold a read lock, so none
// runs while the directory moves. Open files follow the rename by themselves.
type movableFS struct {
	vfs.FS
	mu   sync.RWMutex
	from string // the directory Pebble was opened with, cleaned
	to   string // where it is now ("" until moved)
}

func newMovableFS(fs vfs.FS, dir string) *movableFS {
	return &movableFS{FS: fs, from: filepath.Clean(dir)}
}

// path maps name; called with mu held.
func (m *movableFS) path(name string) string {
	if m.to == "" {
		return name
	}
	if c := filepath.Clean(name); c == m.from {
		return m.to
	} else if rest, ok := strings.CutPrefix(c, m.from+string(filepath.Separator)); ok {
		return filepath.Join(m.to, rest)
	}
	return name
}

// move runs rename (which moves the directory to dir) with every path call held off, then
// maps the old paths to dir.
func (m *movableFS) move(dir string, rename func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := rename(); err != nil {
		return err
	}
	m.to = filepath.Clean(dir)
	return nil
}

func (m *movableFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.Create(m.path(name), category)
}

func (m *movableFS) Link(oldname, newname string) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.Link(m.path(oldname), m.path(newname))
}

func (m *movableFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.Open(m.path(name), opts...)
}

func (m *movableFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.OpenReadWrite(m.path(name), category, opts...)
}

func (m *movableFS) OpenDir(name string) (vfs.File, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.OpenDir(m.path(name))
}

func (m *movableFS) Remove(name string) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.Remove(m.path(name))
}

func (m *movableFS) RemoveAll(name string) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.RemoveAll(m.path(name))
}

func (m *movableFS) Rename(oldname, newname string) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.Rename(m.path(oldname), m.path(newname))
}

func (m *movableFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.ReuseForWrite(m.path(oldname), m.path(newname), category)
}

func (m *movableFS) MkdirAll(dir string, perm os.FileMode) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.MkdirAll(m.path(dir), perm)
}

func (m *movableFS) Lock(name string) (io.Closer, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.Lock(m.path(name))
}

func (m *movableFS) List(dir string) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.List(m.path(dir))
}

func (m *movableFS) Stat(name string) (vfs.FileInfo, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.Stat(m.path(name))
}

func (m *movableFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.FS.GetDiskUsage(m.path(path))
}

func (m *movableFS) Unwrap() vfs.FS { return m.FS }
