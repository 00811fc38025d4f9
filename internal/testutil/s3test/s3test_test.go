package s3test

import (
	"context"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestBinaryMissingSaysHowToBuild(t *testing.T) {
	t.Setenv("SLIPSTREAM_WEED", "/nonexistent/weed")
	if _, err := Binary(); err == nil || !strings.Contains(err.Error(), "SLIPSTREAM_WEED") {
		t.Fatalf("Binary() = %v, want an error naming SLIPSTREAM_WEED", err)
	}
	t.Setenv("SLIPSTREAM_WEED", "")
	t.Setenv("PATH", t.TempDir())
	t.Chdir(t.TempDir()) // no repository above: no bin/weed
	if _, err := Binary(); err == nil || !strings.Contains(err.Error(), "hack/seaweedfs.sh") {
		t.Fatalf("Binary() = %v, want instructions to build weed", err)
	}
}

func TestStartServesBucketAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a SeaweedFS server")
	}
	s := Start(t, "probe")
	ctx := context.Background()
	if _, err := s.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("probe"), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatalf("put: %v", err)
	}
	pid := s.cmd.Process.Pid
	s.Stop()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("weed (pid %d) still running after Stop", pid)
	}
}
