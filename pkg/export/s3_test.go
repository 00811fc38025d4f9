package export

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/slipstream-dev/slipstream/internal/testutil/s3test"
)

// TestS3 runs the transport conformance suite and the error cases against a real
// S3-compatible server (SeaweedFS weed mini, built by hack/seaweedfs.sh). Without the weed
// binary it fails, saying how to build it; only -short skips it.
func TestS3(t *testing.T) {
	if testing.Short() {
		t.Skip("S3 tests start a SeaweedFS server: run without -short (needs bin/weed from `make tools` or hack/seaweedfs.sh)")
	}
	srv := s3test.Start(t, "exports")
	srv.SetEnv(t)
	ctx := context.Background()

	t.Run("Transport", func(t *testing.T) {
		runTransportSuite(t, func(t *testing.T) *Location {
			l, err := OpenLocation(ctx, srv.URL("exports", "prefix="+randomPrefix()+"/"))
			if err != nil {
				t.Fatal(err)
			}
			return l
		})
	})

	t.Run("MissingBucket", func(t *testing.T) {
		l, err := OpenLocation(ctx, srv.URL("no-such-bucket"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if _, err := l.List(ctx, "orders"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("list in a missing bucket: %v, want ErrUnavailable", err)
		}
		_, _, err = l.Upload(ctx, newSliceFold(5, live("k.a", "v", 1)), suiteMeta())
		if err == nil {
			t.Fatal("upload to a missing bucket succeeded")
		}
	})

	t.Run("DeniedCredentials", func(t *testing.T) {
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-"+srv.SecretKey)
		l, err := OpenLocation(ctx, srv.URL("exports"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		_, err = l.List(ctx, "orders")
		if !errors.Is(err, ErrAccessDenied) {
			t.Fatalf("list with a wrong secret: %v, want ErrAccessDenied", err)
		}
		if contains := err.Error(); len(srv.SecretKey) > 0 && containsStr(contains, srv.SecretKey) {
			t.Fatalf("error leaks the secret: %v", err)
		}
		_, _, err = l.Upload(ctx, newSliceFold(5, live("k.a", "v", 1)), suiteMeta())
		if !errors.Is(err, ErrAccessDenied) {
			t.Fatalf("upload with a wrong secret: %v, want ErrAccessDenied", err)
		}
	})

	t.Run("UnreachableEndpoint", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there any more
		l, err := OpenLocation(ctx, "s3://exports?endpoint=http://"+addr+"&use_path_style=true&disable_https=true&region=us-east-1")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := l.List(cctx, "orders"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("list at an unreachable endpoint: %v, want ErrUnavailable", err)
		}
	})
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func randomPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
