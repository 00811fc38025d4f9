package export

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func fileLocation(t *testing.T) *Location {
	l, err := OpenLocation(context.Background(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFileTransport(t *testing.T) { runTransportSuite(t, fileLocation) }

func TestFileLocationErrors(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "does-not-exist")
	if _, err := OpenLocation(ctx, "file://"+missing); !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrLocation) {
		t.Errorf("missing directory: %v, want ErrUnavailable or ErrLocation", err)
	}
	if l, err := OpenLocation(ctx, "file://"+missing+"?create_dir=true"); err != nil {
		t.Errorf("create_dir: %v", err)
	} else {
		l.Close()
	}
	for _, u := range []string{"nosuchscheme://x", "::not a url", "s3://user:secret@bucket"} {
		_, err := OpenLocation(ctx, u)
		if !errors.Is(err, ErrLocation) {
			t.Errorf("OpenLocation(%q) = %v, want ErrLocation", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks the credential: %v", err)
		}
	}
}
