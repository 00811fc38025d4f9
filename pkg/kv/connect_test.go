package kv_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/slipstream-dev/slipstream/internal/testutil/natstest"
	"github.com/slipstream-dev/slipstream/pkg/kv"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConnectInvalidOptions(t *testing.T) {
	file := writeFile(t, "x", "x")
	for name, o := range map[string]kv.Options{
		"no url":              {},
		"bad scheme":          {URLs: []string{"http://127.0.0.1:4222"}},
		"no host":             {URLs: []string{"nats://"}},
		"nkey and creds":      {URLs: []string{"nats://h:1"}, CredsFile: file, NKeySeedFile: file},
		"token and creds":     {URLs: []string{"nats://h:1"}, CredsData: "eA==", Token: "t"},
		"token and url user":  {URLs: []string{"nats://u:p@h:1"}, Token: "t"},
		"cert without key":    {URLs: []string{"nats://h:1"}, TLS: kv.TLSOptions{CertFile: file}},
		"creds not base64":    {URLs: []string{"nats://h:1"}, CredsData: "%%%"},
		"creds not a jwt":     {URLs: []string{"nats://h:1"}, CredsData: base64.StdEncoding.EncodeToString([]byte("hello"))},
		"creds file missing":  {URLs: []string{"nats://h:1"}, CredsFile: "/nonexistent/x.creds"},
		"ca file missing":     {URLs: []string{"nats://h:1"}, TLS: kv.TLSOptions{CAFile: "/nonexistent/ca.pem"}},
		"different url users": {URLs: []string{"nats://a:b@h:1", "nats://c:d@h:2"}},
		"bad nkey seed":       {URLs: []string{"nats://h:1"}, NKeySeedFile: file},
	} {
		_, err := kv.Connect(testCtx(t), o)
		if !errors.Is(err, kv.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestConnectUnreachable(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.URL()
	srv.Shutdown()
	_, err := kv.Connect(testCtx(t), kv.Options{URLs: []string{url}, ConnectTimeout: time.Second})
	if !errors.Is(err, kv.ErrNotConnected) {
		t.Fatalf("unreachable: %v", err)
	}
	c, err := kv.Connect(testCtx(t), kv.Options{URLs: []string{url}, RetryOnFailedConnect: true})
	if err != nil {
		t.Fatalf("retry on failed connect: %v", err)
	}
	defer c.Close()
	if c.Connected() {
		t.Fatal("connected to a stopped server")
	}
}

func TestConnectUserPassword(t *testing.T) {
	srv := natstest.StartWith(t, natstest.Options{Configure: func(o *server.Options) {
		o.Username, o.Password = "alice", "s3cret"
	}})
	good := strings.Replace(srv.URL(), "nats://", "nats://alice:s3cret@", 1)
	c, err := kv.Connect(testCtx(t), kv.Options{URLs: []string{good}})
	if err != nil {
		t.Fatalf("user/password in URL: %v", err)
	}
	if st := c.Status(); !st.Connected || strings.Contains(st.URL, "s3cret") {
		t.Errorf("status = %+v (must be connected, password redacted)", st)
	}
	_ = c.Close()
	bad := strings.Replace(srv.URL(), "nats://", "nats://alice:wrong@", 1)
	_, err = kv.Connect(testCtx(t), kv.Options{URLs: []string{bad}})
	if !errors.Is(err, kv.ErrPermissionDenied) {
		t.Errorf("wrong password: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestConnectToken(t *testing.T) {
	srv := natstest.StartWith(t, natstest.Options{Configure: func(o *server.Options) { o.Authorization = "tok" }})
	c, err := kv.Connect(testCtx(t), kv.Options{URLs: []string{srv.URL()}, Token: "tok"})
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	_ = c.Close()
	if _, err := kv.Connect(testCtx(t), kv.Options{URLs: []string{srv.URL()}, Token: "nope"}); !errors.Is(err, kv.ErrPermissionDenied) {
		t.Errorf("bad token: %v", err)
	}
}

func TestConnectNKeySeedFile(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	srv := natstest.StartWith(t, natstest.Options{Configure: func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	}})
	c, err := kv.Connect(testCtx(t), kv.Options{URLs: []string{srv.URL()}, NKeySeedFile: writeFile(t, "user.nk", string(seed))})
	if err != nil {
		t.Fatalf("nkey: %v", err)
	}
	_ = c.Close()
}

// operatorServer runs a server in operator (JWT) mode and returns it with the .creds
// content of a user of its account.
func operatorServer(t *testing.T) (*natstest.Server, string) {
	t.Helper()
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	ojwt, err := oc.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	akp, _ := nkeys.CreateAccount()
	apub, _ := akp.PublicKey()
	ac := jwt.NewAccountClaims(apub)
	ajwt, err := ac.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upub)
	ujwt, err := uc.Encode(akp)
	if err != nil {
		t.Fatal(err)
	}
	useed, _ := ukp.Seed()
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	if err != nil {
		t.Fatal(err)
	}
	operator, err := jwt.DecodeOperatorClaims(ojwt)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(apub, ajwt); err != nil {
		t.Fatal(err)
	}
	srv := natstest.StartWith(t, natstest.Options{Configure: func(o *server.Options) {
		o.JetStream = false
		o.TrustedOperators = []*jwt.OperatorClaims{operator}
		o.AccountResolver = resolver
	}})
	return srv, string(creds)
}

func TestConnectCredsPriority(t *testing.T) {
	srv, creds := operatorServer(t)
	inline := base64.StdEncoding.EncodeToString([]byte(creds))
	goodFile := writeFile(t, "good.creds", creds)
	badFile := writeFile(t, "bad.creds", "-----BEGIN NATS USER JWT-----\nnot-a-jwt\n------END NATS USER JWT------\n")
	withUser := strings.Replace(srv.URL(), "nats://", "nats://nobody:nothing@", 1)
	for name, o := range map[string]kv.Options{
		"inline":                   {URLs: []string{srv.URL()}, CredsData: inline},
		"file":                     {URLs: []string{srv.URL()}, CredsFile: goodFile},
		"inline wins over file":    {URLs: []string{srv.URL()}, CredsData: inline, CredsFile: badFile},
		"file wins over url users": {URLs: []string{withUser}, CredsFile: goodFile},
	} {
		c, err := kv.Connect(testCtx(t), o)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		_ = c.Close()
	}
	for name, o := range map[string]kv.Options{
		"bad file":            {URLs: []string{srv.URL()}, CredsFile: badFile},
		"url user, not creds": {URLs: []string{withUser}},
	} {
		if _, err := kv.Connect(testCtx(t), o); err == nil {
			t.Errorf("%s: connected", name)
		}
	}
}

func TestStatusCapabilitiesClose(t *testing.T) {
	srv := natstest.Start(t)
	c, err := kv.Connect(testCtx(t), kv.Options{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	st := c.Status()
	if !st.Connected || st.ServerVersion == "" || st.LastError != nil {
		t.Errorf("status = %+v", st)
	}
	caps := c.Capabilities()
	if !caps.CAS || !caps.MultiFilter || !caps.LimitMarkers || !caps.PrefixFilter || !caps.StreamingWatch ||
		!caps.GlobalOrdering || caps.ServerVersion != server.VERSION {
		t.Errorf("capabilities = %+v (server %s)", caps, server.VERSION)
	}
	srv.Restart(t)
	eventually(t, "reconnect", func() bool { return c.Status().Reconnects == 1 && c.Connected() })
	if c.Status().LastError == nil {
		t.Error("disconnect not recorded as last error")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Connected() {
		t.Error("connected after Close")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
