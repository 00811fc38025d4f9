// Command demo-writer creates the demo bucket, fills it with realistic edge configuration
// (HTTP routes, TLS certificates, WASM filter configs) and then keeps writing changes at a
// steady rate, as a control plane would. Used by hack/demo.sh and the agent's process tests.
//
//	demo-writer --nats-url nats://127.0.0.1:4222 --bucket edge-config --rate 5
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

var services = []string{"api", "auth", "billing", "cart", "catalog", "checkout", "images", "inventory",
	"notifications", "orders", "payments", "profile", "recommendations", "search", "shipping", "static"}

var filters = []string{"ratelimit", "jwt-verify", "geo-block", "header-rewrite", "bot-detect", "cors"}

func main() {
	url := flag.String("nats-url", "nats://127.0.0.1:4222", "NATS URL")
	bucket := flag.String("bucket", "edge-config", "bucket to create and write")
	rate := flag.Float64("rate", 5, "changes per second after seeding (0: seed only and exit)")
	duration := flag.Duration("duration", 0, "stop writing after this long (0: until SIGTERM)")
	history := flag.Int("history", 1, "bucket history per key (1..64)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, log, *url, *bucket, *rate, *duration, *history)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("demo-writer failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, url, bucket string, rate float64, duration time.Duration, history int) error {
	conn, err := kv.Connect(ctx, kv.Options{URLs: []string{url}, Name: "demo-writer", Logger: log})
	if err != nil {
		return err
	}
	defer conn.Close()
	b, err := conn.CreateOrUpdateBucket(ctx, kv.BucketConfig{Name: bucket, History: uint8(history), Description: "Slipstream demo: edge routing, certificates and WASM filter configs"})
	if err != nil {
		return err
	}
	n := 0
	for _, s := range services {
		if _, err := b.Put(ctx, "route."+s, route(s)); err != nil {
			return err
		}
		n++
	}
	for _, s := range services[:8] {
		c, err := cert(s + ".example.com")
		if err != nil {
			return err
		}
		if _, err := b.Put(ctx, "cert."+s+".example.com", c); err != nil {
			return err
		}
		n++
	}
	for _, f := range filters {
		if _, err := b.Put(ctx, "wasm."+f, wasmConfig(f)); err != nil {
			return err
		}
		n++
	}
	log.Info("seeded", "bucket", bucket, "keys", n)
	if rate <= 0 {
		return nil
	}
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	writes := 0
	for {
		select {
		case <-ctx.Done():
			log.Info("writer stopped", "writes", writes)
			return nil
		case <-tick.C:
		}
		if err := change(ctx, b); err != nil {
			if ctx.Err() != nil {
				continue
			}
			log.Warn("write failed; continuing", "error", err)
			continue
		}
		writes++
	}
}

// change makes one realistic change: mostly route weight shifts, sometimes a filter config
// bump, a canary route appearing or disappearing, or a certificate rotation.
func change(ctx context.Context, b *kv.Bucket) error {
	s := services[mrand.IntN(len(services))]
	switch p := mrand.IntN(100); {
	case p < 70:
		_, err := b.Put(ctx, "route."+s, route(s))
		return err
	case p < 85:
		f := filters[mrand.IntN(len(filters))]
		_, err := b.Put(ctx, "wasm."+f, wasmConfig(f))
		return err
	case p < 95:
		key := "route.canary-" + s
		if mrand.IntN(2) == 0 {
			_, err := b.Delete(ctx, key)
			return err
		}
		_, err := b.Put(ctx, key, route("canary-"+s))
		return err
	default:
		c, err := cert(s + ".example.com")
		if err != nil {
			return err
		}
		_, err = b.Put(ctx, "cert."+s+".example.com", c)
		return err
	}
}

func route(svc string) []byte {
	type upstream struct {
		Addr   string `json:"addr"`
		Weight int    `json:"weight"`
	}
	w := mrand.IntN(101)
	r := struct {
		Host      string     `json:"host"`
		PathPref  string     `json:"pathPrefix"`
		Upstreams []upstream `json:"upstreams"`
		TimeoutMS int        `json:"timeoutMs"`
		Retries   int        `json:"retries"`
		Filters   []string   `json:"filters"`
		UpdatedAt time.Time  `json:"updatedAt"`
	}{
		Host: svc + ".example.com", PathPref: "/" + svc,
		Upstreams: []upstream{{fmt.Sprintf("10.0.%d.%d:8080", len(svc), mrand.IntN(250)+1), w}, {fmt.Sprintf("10.1.%d.%d:8080", len(svc), mrand.IntN(250)+1), 100 - w}},
		TimeoutMS: 500 + 250*mrand.IntN(8), Retries: mrand.IntN(4),
		Filters:   []string{filters[mrand.IntN(len(filters))]},
		UpdatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	out, _ := json.Marshal(r)
	return out
}

func wasmConfig(name string) []byte {
	sum := sha256.Sum256([]byte(name + time.Now().String()))
	c := map[string]any{
		"module":  "oci://registry.example.com/filters/" + name + "@sha256:" + hex.EncodeToString(sum[:]),
		"runtime": "wasmtime",
		"config":  map[string]any{"enabled": true, "limitPerSecond": 50 + mrand.IntN(950), "failOpen": mrand.IntN(2) == 0},
	}
	out, _ := json.Marshal(c)
	return out
}

// cert returns a fresh self-signed ECDSA certificate for host as PEM.
func cert(host string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	// Only the certificate: the private key stays with whoever issued it (the demo drops it).
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
