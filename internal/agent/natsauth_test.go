package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/slipstream-dev/slipstream/api/v1alpha1"
	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
)

func writeSecret(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParseRunNATSCredentialFiles: the credential files the controller mounts are read
// from their SLIPSTREAM_* variables, checked, and a wrong combination or content is
// refused with a message naming the flag.
func TestParseRunNATSCredentialFiles(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--nats-url", "nats://127.0.0.1:4222", "--bucket", "b", "--data-dir", dir}
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	acct, _ := nkeys.CreateAccount()
	acctSeed, _ := acct.Seed()
	user := writeSecret(t, dir, "username", "edge\n")
	pass := writeSecret(t, dir, "password", "s3cret with space\n")
	tok := writeSecret(t, dir, "token", "  tok123\n")
	creds := writeSecret(t, dir, "user.creds", "-----BEGIN NATS USER JWT-----\nx\n------END NATS USER JWT------\n")

	c, err := ParseRun(base, env(map[string]string{
		"SLIPSTREAM_NATS_USER_FILE": user, "SLIPSTREAM_NATS_PASSWORD_FILE": pass,
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.connectOptions()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(o.URLs[0])
	if pw, _ := u.User.Password(); u.User.Username() != "edge" || pw != "s3cret with space" {
		t.Fatalf("user/password into the URL: %q / %q", u.User.Username(), pw)
	}
	if strings.Contains(c.NATSURLs[0], "s3cret") {
		t.Fatal("the password leaked into the configured URLs (which are logged)")
	}
	c, err = ParseRun(base, env(map[string]string{"SLIPSTREAM_NATS_TOKEN_FILE": tok}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o, err = c.connectOptions(); err != nil || o.Token != "tok123" {
		t.Fatalf("token: %q %v", o.Token, err)
	}
	seedFile := writeSecret(t, dir, "nkey.seed", string(seed)+"\n")
	if c, err = ParseRun(base, env(map[string]string{"SLIPSTREAM_NKEY_SEED_FILE": seedFile}), io.Discard); err != nil || c.NATSAuth.NKeySeedFile != seedFile {
		t.Fatalf("nkey seed: %+v %v", c.NATSAuth, err)
	}

	// TLS: a CA alone (the controller names tls.crt/tls.key even when the Secret lacks them).
	ca := writeSecret(t, dir, "ca.crt", newTestCert(t, "ca", nil, true, x509.ExtKeyUsageAny).certPEM)
	c, err = ParseRun(base, env(map[string]string{
		"SLIPSTREAM_TLS_CA_FILE": ca, "SLIPSTREAM_TLS_CERT_FILE": filepath.Join(dir, "tls.crt"), "SLIPSTREAM_TLS_KEY_FILE": filepath.Join(dir, "tls.key"),
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.NATSAuth.TLSCAFile != ca || c.NATSAuth.TLSCertFile != "" || c.NATSAuth.TLSKeyFile != "" {
		t.Fatalf("tls with a CA only: %+v", c.NATSAuth)
	}

	bad := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"two credentials", map[string]string{"SLIPSTREAM_NATS_TOKEN_FILE": tok}, []string{"--creds-file", creds}, "--creds-file and --nats-token-file: give one NATS credential"},
		{"user without password", map[string]string{"SLIPSTREAM_NATS_USER_FILE": user}, nil, "--nats-user-file and --nats-password-file: give both"},
		{"missing token file", map[string]string{"SLIPSTREAM_NATS_TOKEN_FILE": filepath.Join(dir, "nope")}, nil, "--nats-token-file"},
		{"token with spaces", map[string]string{"SLIPSTREAM_NATS_TOKEN_FILE": writeSecret(t, dir, "t2", "a b")}, nil, "one line without spaces"},
		{"empty password", map[string]string{"SLIPSTREAM_NATS_USER_FILE": user, "SLIPSTREAM_NATS_PASSWORD_FILE": writeSecret(t, dir, "p2", "\n")}, nil, "--nats-password-file"},
		{"not a seed", map[string]string{"SLIPSTREAM_NKEY_SEED_FILE": writeSecret(t, dir, "s2", "hello")}, nil, "not an NKey seed"},
		{"account seed", map[string]string{"SLIPSTREAM_NKEY_SEED_FILE": writeSecret(t, dir, "s3", string(acctSeed))}, nil, "not a user seed"},
		{"url credentials and a token", map[string]string{"SLIPSTREAM_NATS_TOKEN_FILE": tok, "SLIPSTREAM_NATS_URL": "nats://u:p@127.0.0.1:4222"}, []string{"--bucket", "b", "--data-dir", dir}, "carries credentials"},
		{"ca not pem", map[string]string{"SLIPSTREAM_TLS_CA_FILE": writeSecret(t, dir, "ca2", "junk")}, nil, "no PEM certificate"},
		{"key without cert", map[string]string{"SLIPSTREAM_TLS_CERT_FILE": filepath.Join(dir, "none.crt"), "SLIPSTREAM_TLS_KEY_FILE": writeSecret(t, dir, "k", "x")}, nil, "--tls-cert-file"},
		{"cert and key unparsable", map[string]string{"SLIPSTREAM_TLS_CERT_FILE": writeSecret(t, dir, "c", "x"), "SLIPSTREAM_TLS_KEY_FILE": writeSecret(t, dir, "k2", "x")}, nil, "not a PEM certificate and its key"},
	}
	for _, b := range bad {
		args := b.args
		if len(args) == 0 || args[0] == "--creds-file" {
			args = append(append([]string{}, base...), args...)
		}
		_, err := ParseRun(args, env(b.env), io.Discard)
		var ce *ConfigError
		if err == nil || !strings.Contains(err.Error(), b.want) || !asConfigError(err, &ce) {
			t.Errorf("%s: %v, want a ConfigError with %q", b.name, err, b.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the message shows a secret: %v", b.name, err)
		}
	}
}

func asConfigError(err error, ce **ConfigError) bool {
	c, ok := err.(*ConfigError) //nolint:errorlint // ParseRun returns it unwrapped
	*ce = c
	return ok
}

// TestParseClusterEnv: SLIPSTREAM_KVFOLD_NAME turns cluster mode on; the identity must be
// complete and valid.
func TestParseClusterEnv(t *testing.T) {
	full := map[string]string{
		v1alpha1.EnvFoldName: "routes", v1alpha1.EnvFoldNamespace: "edge", v1alpha1.EnvNodeName: "node-1.example",
		v1alpha1.EnvPodName: "routes-abcde", v1alpha1.EnvExportLease: "routes-export",
	}
	c, err := parseClusterEnv(env(full), true)
	if err != nil || c == nil || c.Fold != "routes" || c.Namespace != "edge" || c.Node != "node-1.example" || c.Pod != "routes-abcde" || c.ExportLease != "routes-export" {
		t.Fatalf("%+v %v", c, err)
	}
	if c, err := parseClusterEnv(env(nil), true); c != nil || err != nil {
		t.Fatalf("standalone: %+v %v", c, err)
	}
	for _, tc := range []struct {
		drop, set, value, want string
		exports                bool
	}{
		{drop: v1alpha1.EnvNodeName, want: "SLIPSTREAM_NODE_NAME is empty or unset"},
		{drop: v1alpha1.EnvPodName, want: "SLIPSTREAM_POD_NAME"},
		{drop: v1alpha1.EnvExportLease, exports: true, want: "SLIPSTREAM_EXPORT_LEASE"},
		{set: v1alpha1.EnvFoldNamespace, value: "Not_A_Namespace", want: "SLIPSTREAM_KVFOLD_NAMESPACE \"Not_A_Namespace\""},
		{set: v1alpha1.EnvFoldName, value: "", want: "SLIPSTREAM_KVFOLD_NAME is set (cluster mode) but SLIPSTREAM_KVFOLD_NAME is empty"},
	} {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		if tc.drop != "" {
			delete(m, tc.drop)
		}
		if tc.set != "" {
			m[tc.set] = tc.value
		}
		if _, err := parseClusterEnv(env(m), tc.exports); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc, err, tc.want)
		}
	}
	// Without exports the Lease is optional.
	m := map[string]string{}
	for k, v := range full {
		m[k] = v
	}
	delete(m, v1alpha1.EnvExportLease)
	if _, err := parseClusterEnv(env(m), false); err != nil {
		t.Fatal(err)
	}
}

// testCert is a certificate for 127.0.0.1 and its key, as PEM.
type testCert struct {
	cert            *x509.Certificate
	key             *ecdsa.PrivateKey
	certPEM, keyPEM string
}

// newTestCert makes a certificate signed by parent (self-signed when nil).
func newTestCert(t *testing.T, cn string, parent *testCert, isCA bool, usage x509.ExtKeyUsage) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: isCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: cert, key: key,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))}
}

// TestAgentConnectsWithCredentialFiles: the agent authenticates to a real nats-server with
// the user/password files (a password with spaces and URL delimiters), the token file, and
// the TLS files (a server that requires a client certificate).
func TestAgentConnectsWithCredentialFiles(t *testing.T) {
	ca := newTestCert(t, "ca", nil, true, x509.ExtKeyUsageAny)
	srvCert := newTestCert(t, "server", ca, false, x509.ExtKeyUsageServerAuth)
	cliCert := newTestCert(t, "client", ca, false, x509.ExtKeyUsageClientAuth)
	cases := []struct {
		name string
		auth func(o *server.Options)
		env  func(dir string) map[string]string
	}{
		{"tls with a client certificate", func(o *server.Options) {
			pair, err := tls.X509KeyPair([]byte(srvCert.certPEM), []byte(srvCert.keyPEM))
			if err != nil {
				t.Fatal(err)
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca.cert)
			o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
			o.TLS, o.TLSVerify, o.TLSTimeout = true, true, 2
		}, func(dir string) map[string]string {
			return map[string]string{
				"SLIPSTREAM_TLS_CA_FILE":   writeSecret(t, dir, "ca.crt", ca.certPEM),
				"SLIPSTREAM_TLS_CERT_FILE": writeSecret(t, dir, "tls.crt", cliCert.certPEM),
				"SLIPSTREAM_TLS_KEY_FILE":  writeSecret(t, dir, "tls.key", cliCert.keyPEM),
			}
		}},
		{"user and password", func(o *server.Options) { o.Username, o.Password = "edge", "p@ss w/rd:#?" }, func(dir string) map[string]string {
			return map[string]string{
				"SLIPSTREAM_NATS_USER_FILE":     writeSecret(t, dir, "username", "edge\n"),
				"SLIPSTREAM_NATS_PASSWORD_FILE": writeSecret(t, dir, "password", "p@ss w/rd:#?\n"),
			}
		}},
		{"token", func(o *server.Options) { o.Authorization = "s3cr3t-token" }, func(dir string) map[string]string {
			return map[string]string{"SLIPSTREAM_NATS_TOKEN_FILE": writeSecret(t, dir, "token", "s3cr3t-token\n")}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := natstest.StartWith(t, natstest.Options{Configure: c.auth})
			dir := t.TempDir()
			url := srv.URL()
			if strings.HasPrefix(c.name, "tls") {
				url = strings.Replace(url, "nats://", "tls://", 1)
			}
			cfg, err := ParseRun([]string{"--nats-url", url, "--bucket", "b", "--data-dir", filepath.Join(dir, "fold"),
				"--backend", "memory", "--listen", "127.0.0.1:0"}, env(c.env(dir)), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(cfg, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			// Connected and authorized: the agent gets as far as the (missing) bucket.
			waitFor(t, 15*time.Second, "past the connect", func() (bool, string) {
				st := a.tracker.snapshot()
				return strings.Contains(st.LastError, "bucket \"b\" not found"), st.LastError
			})
		})
	}
}
