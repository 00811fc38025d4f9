package pebble

import (
	"iter"
	"path/filepath"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/foldtest"
)

// The bulk load conformance tests again with tables of a few KiB, so that every load
// spans many tables written by the writers in turns (and fails inside one of them).
func TestBulkLoadManyTables(t *testing.T) {
	defer func(n int) { bulkTableRawBytes = n }(bulkTableRawBytes)
	bulkTableRawBytes = 4 << 10
	foldtest.RunBulkLoadTests(t, openTest, func(s fold.Store, dir string, entries iter.Seq2[fold.Entry, error], st fold.State) error {
		return s.(*Store).BulkLoad(filepath.Join(dir, "scratch"), entries, st)
	})
}
