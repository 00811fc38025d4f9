package export

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/fold"
	"github.com/slipstream-dev/slipstream/pkg/fold/backends"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

func TestBackendOpener(t *testing.T) {
	data, _ := writeExport(t, newSliceFold(9, live("k.a", "1", 3), tomb("k.b", 4)), Meta{Bucket: "b", Scope: kv.Prefixes("k.")})
	for _, name := range []string{"pebble", "memory"} {
		final := filepath.Join(t.TempDir(), "fold")
		st, _, err := Import(context.Background(), bytes.NewReader(data), StagingDir(final), final,
			StageOptions{Open: Backend(backends.Config{Backend: name})})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		st.Close()
		if got, err := backends.Detect(final); err != nil || got != name {
			t.Fatalf("seeded fold is %q (%v), want %s", got, err, name)
		}
	}
	_, err := Backend(backends.Config{})(t.TempDir())
	if !errors.Is(err, fold.ErrUnknownBackend) {
		t.Fatalf("unnamed backend: %v", err)
	}
}
