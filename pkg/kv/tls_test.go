package kv_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

type testCert struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM string
	keyPEM  string
}

func newCert(t *testing.T, cn string, parent *testCert, isCA bool, usage x509.ExtKeyUsage) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  isCA,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		BasicConstraintsValid: true,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	return &testCert{
		cert: cert, key: key,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})),
	}
}

func TestConnectTLSWithClientCert(t *testing.T) {
	ca := newCert(t, "ca", nil, true, x509.ExtKeyUsageAny)
	srvCert := newCert(t, "server", ca, false, x509.ExtKeyUsageServerAuth)
	cliCert := newCert(t, "client", ca, false, x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	pair, err := tls.X509KeyPair([]byte(srvCert.certPEM), []byte(srvCert.keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.StartWith(t, natstest.Options{Configure: func(o *server.Options) {
		o.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{pair},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		}
		o.TLS, o.TLSVerify, o.TLSTimeout = true, true, 2
	}})
	url := strings.Replace(srv.URL(), "nats://", "tls://", 1)
	caFile := writeFile(t, "ca.pem", ca.certPEM)
	tlsOpts := kv.TLSOptions{
		CAFile:   caFile,
		CertFile: writeFile(t, "client.pem", cliCert.certPEM),
		KeyFile:  writeFile(t, "client.key", cliCert.keyPEM),
	}
	c, err := kv.Connect(testCtx(t), kv.Options{URLs: []string{url}, TLS: tlsOpts})
	if err != nil {
		t.Fatalf("tls with client cert: %v", err)
	}
	_ = c.Close()
	if _, err := kv.Connect(testCtx(t), kv.Options{URLs: []string{url}, TLS: kv.TLSOptions{CAFile: caFile}}); err == nil {
		t.Error("connected without the required client certificate")
	}
	if _, err := kv.Connect(testCtx(t), kv.Options{URLs: []string{url}, TLS: kv.TLSOptions{CertFile: tlsOpts.CertFile, KeyFile: tlsOpts.KeyFile}}); err == nil {
		t.Error("connected without trusting the server's CA")
	}
}
