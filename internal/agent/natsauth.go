package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// NATSAuth is how the agent authenticates to NATS besides --creds-file, and its TLS files.
// In a cluster they are the mounted Secret files the controller names in the environment
// (SLIPSTREAM_NKEY_SEED_FILE, SLIPSTREAM_NATS_USER_FILE, ... as in
// api/v1alpha1/agent_contract.go: the flags' environment names). The files are checked
// when the configuration is parsed and read again at every connect, so a rotated Secret
// is picked up by the next connection. Their contents are never logged.
type NATSAuth struct {
	NKeySeedFile string // NKey user seed
	UserFile     string // user name, with PasswordFile
	PasswordFile string
	TokenFile    string // authentication token
	TLSCAFile    string // PEM CA bundle
	TLSCertFile  string // PEM client certificate, with TLSKeyFile ("" : none)
	TLSKeyFile   string
}

// validateNATSAuth checks the credential and TLS files: at most one way to authenticate
// (--creds-file, an NKey seed, user and password, a token, or user info in the URLs), each
// file readable and holding what it should.
func (r *rawRun) validateNATSAuth(urls []string) (NATSAuth, error) {
	a := NATSAuth{NKeySeedFile: r.nkeySeedFile, UserFile: r.userFile, PasswordFile: r.passwordFile,
		TokenFile: r.natsTokenFile, TLSCAFile: r.tlsCAFile, TLSCertFile: r.tlsCertFile, TLSKeyFile: r.tlsKeyFile}
	if (a.UserFile == "") != (a.PasswordFile == "") {
		return NATSAuth{}, configErrorf("--nats-user-file and --nats-password-file: give both or neither")
	}
	var methods []string
	for _, m := range []struct{ flag, v string }{
		{"--creds-file", r.credsFile}, {"--nkey-seed-file", a.NKeySeedFile},
		{"--nats-user-file", a.UserFile}, {"--nats-token-file", a.TokenFile},
	} {
		if m.v != "" {
			methods = append(methods, m.flag)
		}
	}
	if len(methods) > 1 {
		return NATSAuth{}, configErrorf("%s: give one NATS credential, not several", strings.Join(methods, " and "))
	}
	if len(methods) == 1 {
		for _, raw := range urls {
			if u, err := url.Parse(raw); err == nil && u.User != nil {
				return NATSAuth{}, configErrorf("--nats-url %q carries credentials and %s is set: give one", redactURL(raw), methods[0])
			}
		}
	}
	if a.NKeySeedFile != "" {
		if _, err := readNKeySeed(a.NKeySeedFile); err != nil {
			return NATSAuth{}, &ConfigError{Msg: err.Error()}
		}
	}
	if a.UserFile != "" {
		if _, _, err := readUserPassword(a.UserFile, a.PasswordFile); err != nil {
			return NATSAuth{}, &ConfigError{Msg: err.Error()}
		}
	}
	if a.TokenFile != "" {
		if _, err := readSecretLine("--nats-token-file", a.TokenFile); err != nil {
			return NATSAuth{}, err
		}
	}
	if err := a.validateTLS(); err != nil {
		return NATSAuth{}, err
	}
	return a, nil
}

// validateTLS checks the TLS files. A client certificate and key named together but both
// absent mean "no client certificate": a TLS Secret may hold only ca.crt, and the
// controller names all three files.
func (a *NATSAuth) validateTLS() error {
	if a.TLSCAFile != "" {
		if err := readableFile("--tls-ca-file", a.TLSCAFile); err != nil {
			return err
		}
		pem, err := os.ReadFile(a.TLSCAFile)
		if err != nil {
			return configErrorf("--tls-ca-file %q: unreadable: %v", a.TLSCAFile, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return configErrorf("--tls-ca-file %q: no PEM certificate in it", a.TLSCAFile)
		}
	}
	if a.TLSCertFile == "" && a.TLSKeyFile == "" {
		return nil
	}
	if a.TLSCertFile == "" || a.TLSKeyFile == "" {
		return configErrorf("--tls-cert-file and --tls-key-file: give both or neither")
	}
	certMissing, keyMissing := missing(a.TLSCertFile), missing(a.TLSKeyFile)
	switch {
	case certMissing && keyMissing:
		a.TLSCertFile, a.TLSKeyFile = "", ""
		return nil
	case certMissing:
		return configErrorf("--tls-cert-file %q does not exist but --tls-key-file %q does: a client certificate needs both", a.TLSCertFile, a.TLSKeyFile)
	case keyMissing:
		return configErrorf("--tls-key-file %q does not exist but --tls-cert-file %q does: a client certificate needs both", a.TLSKeyFile, a.TLSCertFile)
	}
	if _, err := tls.LoadX509KeyPair(a.TLSCertFile, a.TLSKeyFile); err != nil {
		return configErrorf("--tls-cert-file %q and --tls-key-file %q: not a PEM certificate and its key: %v", a.TLSCertFile, a.TLSKeyFile, err)
	}
	return nil
}

func missing(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist)
}

// readSecretLine reads a one-line secret (a token, a user name) with surrounding whitespace
// trimmed. Errors name the flag and the file, never the content.
func readSecretLine(flag, path string) (string, error) {
	if err := readableFile(flag, path); err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", configErrorf("%s %q: unreadable: %v", flag, path, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", configErrorf("%s %q: holds only whitespace", flag, path)
	}
	if strings.ContainsAny(v, " \t\r\n") {
		return "", configErrorf("%s %q: must be one line without spaces", flag, path)
	}
	return v, nil
}

// readUserPassword reads the user name (one line) and the password (the whole file but a
// trailing line break, so `echo secret > file` works and inner spaces are kept).
func readUserPassword(userFile, passwordFile string) (string, string, error) {
	user, err := readSecretLine("--nats-user-file", userFile)
	if err != nil {
		return "", "", err
	}
	if err := readableFile("--nats-password-file", passwordFile); err != nil {
		return "", "", err
	}
	b, err := os.ReadFile(passwordFile)
	if err != nil {
		return "", "", configErrorf("--nats-password-file %q: unreadable: %v", passwordFile, err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", "", configErrorf("--nats-password-file %q: empty password", passwordFile)
	}
	return user, pw, nil
}

// readNKeySeed checks that the file holds an NKey user seed ("SU...").
func readNKeySeed(path string) ([]byte, error) {
	if err := readableFile("--nkey-seed-file", path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, configErrorf("--nkey-seed-file %q: unreadable: %v", path, err)
	}
	seed := []byte(strings.TrimSpace(string(b)))
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return nil, configErrorf("--nkey-seed-file %q: not an NKey seed (want one line starting with SU)", path)
	}
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, configErrorf("--nkey-seed-file %q: an NKey seed but not a user seed (want one starting with SU)", path)
	}
	return seed, nil
}

// connectOptions reads the credential files into kv options: the seed file and TLS files
// by path, the token and user/password by content (user and password go into the URLs,
// which pkg/kv passes on to the server and never logs).
func (c Config) connectOptions() (kv.Options, error) {
	o := kv.Options{
		URLs: c.NATSURLs, CredsFile: c.CredsFile, NKeySeedFile: c.NATSAuth.NKeySeedFile,
		TLS: kv.TLSOptions{CAFile: c.NATSAuth.TLSCAFile, CertFile: c.NATSAuth.TLSCertFile, KeyFile: c.NATSAuth.TLSKeyFile},
	}
	a := c.NATSAuth
	if a.TokenFile != "" {
		tok, err := readSecretLine("--nats-token-file", a.TokenFile)
		if err != nil {
			return kv.Options{}, err
		}
		o.Token = tok
	}
	if a.UserFile != "" {
		user, pw, err := readUserPassword(a.UserFile, a.PasswordFile)
		if err != nil {
			return kv.Options{}, err
		}
		urls := make([]string, len(c.NATSURLs))
		for i, raw := range c.NATSURLs {
			u, err := url.Parse(raw)
			if err != nil {
				return kv.Options{}, configErrorf("--nats-url %q: not a URL", redactURL(raw))
			}
			u.User = url.UserPassword(user, pw)
			urls[i] = u.String()
		}
		o.URLs = urls
	}
	return o, nil
}
