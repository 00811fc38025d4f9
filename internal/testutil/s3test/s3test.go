package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// readyTimeout bounds how long Start waits for the S3 gateway and the buckets.
const readyTimeout = 90 * time.Second

// Region is the region clients must use (weed accepts any; the SDK needs one).
const Region = "us-east-1"

// Server is a running weed mini.
type Server struct {
	// Endpoint is the S3 endpoint, http://127.0.0.1:<port>.
	Endpoint string
	// AccessKey and SecretKey are the only credentials the server accepts.
	AccessKey, SecretKey string
	// Dir is the server's data directory.
	Dir string

	cmd     *exec.Cmd
	log     *syncWriter
	exited  chan struct{}
	sockets []string
	stop    sync.Once
}

// Binary returns the path of the weed binary, or an error telling how to build it.
func Binary() (string, error) {
	if p := os.Getenv("SLIPSTREAM_WEED"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SLIPSTREAM_WEED=%s: %w", p, err)
		}
		return p, nil
	}
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, "bin", "weed")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("weed"); err == nil {
		return p, nil
	}
	return "", errors.New("the SeaweedFS weed binary is missing (needed for the S3 tests): " +
		"run `make tools` or `hack/seaweedfs.sh` (about 4 minutes the first time) to build bin/weed, " +
		"or point SLIPSTREAM_WEED at a weed binary")
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start starts weed mini with the given buckets created, and stops it when the test
// ends. It fails the test when weed is missing or does not become ready.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	s := &Server{Dir: t.TempDir(), AccessKey: "slipstream" + randHex(4), SecretKey: randHex(20),
		log: &syncWriter{b: &bytes.Buffer{}}, exited: make(chan struct{})}
	ports, err := freePorts(9)
	if err != nil {
		t.Fatalf("s3test: pick ports: %v", err)
	}
	cfg := filepath.Join(s.Dir, "s3.json")
	if err := writeS3Config(cfg, s.AccessKey, s.SecretKey); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	data := filepath.Join(s.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	args := []string{"mini",
		"-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + p(0), "-master.port.grpc=" + p(1),
		"-volume.port=" + p(2), "-volume.port.grpc=" + p(3),
		"-filer.port=" + p(4), "-filer.port.grpc=" + p(5),
		"-s3.port=" + p(6), "-s3.port.grpc=" + p(7),
		"-webdav=false", "-webdav.port=" + p(8),
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-admin.ui=false", "-admin.port.legacy=0",
		"-master.telemetry=false",
		"-s3.config=" + cfg, "-s3.autoCreateBucket=false",
	}
	if len(buckets) > 0 {
		args = append(args, "-bucket="+join(buckets))
	}
	s.Endpoint = "http://127.0.0.1:" + p(6)
	for _, svc := range []struct {
		name string
		port int
	}{{"master", ports[1]}, {"volume", ports[3]}, {"filer", ports[5]}, {"s3", ports[7]}} {
		s.sockets = append(s.sockets, fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", svc.name, svc.port))
	}
	s.sockets = append(s.sockets, fmt.Sprintf("/tmp/seaweedfs-filer-%d.sock", ports[4]), fmt.Sprintf("/tmp/seaweedfs-s3-%d.sock", ports[6]))

	s.cmd = exec.CommandContext(context.Background(), bin, args...) // stopped by Stop, by PID
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.Env = append(os.Environ(), "HOME="+s.Dir)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("s3test: start %s: %v", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(s.Stop)
	if err := s.waitReady(buckets); err != nil {
		s.Stop()
		t.Fatalf("s3test: weed mini not ready: %v\n--- weed output (tail) ---\n%s", err, s.tail())
	}
	return s
}

// Stop stops the server by its PID (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (s *Server) Stop() {
	s.stop.Do(func() {
		pid := s.cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-s.exited
		}
		for _, p := range s.sockets {
			_ = os.Remove(p)
		}
	})
}

// URL returns a gocloud.dev/blob URL for bucket on this server, with extra query
// parameters (e.g. "prefix=x/").
func (s *Server) URL(bucket string, extra ...string) string {
	q := url.Values{}
	q.Set("endpoint", s.Endpoint)
	q.Set("use_path_style", "true")
	q.Set("disable_https", "true")
	q.Set("region", Region)
	u := "s3://" + bucket + "?" + q.Encode()
	for _, e := range extra {
		u += "&" + e
	}
	return u
}

// SetEnv points the AWS SDK at this server's credentials for the rest of the test.
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(s.Dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(s.Dir, "no-aws-credentials"))
}

// Client returns an S3 client for this server (for direct object manipulation in tests).
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// waitReady polls (with a deadline, no fixed sleeps) until every bucket answers HeadBucket.
func (s *Server) waitReady(buckets []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	c := s.Client()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = nil
		if len(buckets) == 0 {
			_, last = c.ListBuckets(ctx, &s3.ListBucketsInput{})
		}
		for _, b := range buckets {
			if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)}); err != nil {
				last = fmt.Errorf("bucket %q: %w", b, err)
				break
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("weed exited: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", readyTimeout, last)
		case <-tick.C:
		}
	}
}

func (s *Server) tail() string {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	b := s.log.b.Bytes()
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// writeS3Config writes a weed S3 identity file with one admin identity.
func writeS3Config(path, access, secret string) error {
	cfg := map[string]any{
		"identities": []map[string]any{{
			"name":        "slipstream-test",
			"credentials": []map[string]string{{"accessKey": access, "secretKey": secret}},
			"actions":     []string{"Admin", "Read", "Write", "List", "Tagging"},
		}},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// freePorts returns n distinct free TCP ports on 127.0.0.1 (held open together while
// picking, so they differ).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for len(out) < n {
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		port := l.Addr().(*net.TCPAddr).Port
		// weed derives gRPC ports as http+10000 when unset; all are set, but keep the
		// picks well inside the valid range anyway.
		if port+10000 > 65535 {
			continue
		}
		out = append(out, port)
	}
	return out, nil
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type syncWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
