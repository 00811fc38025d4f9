package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slipstream-dev/slipstream/pkg/kv"
)

// LeaseConfig configures a Lease.
type LeaseConfig struct {
	// Bucket holds the lease key. Use a bucket (or a key) outside every fold's scope, or the
	// lease's writes become part of the folds: a dedicated bucket such as "slipstream_leases"
	// is simplest.
	Bucket *kv.Bucket
	// Key names the lease, e.g. LeaseKey("orders").
	Key string
	// Holder identifies this exporter (node or pod name; it is stored in the bucket and
	// logged, so never a secret).
	Holder string
	// TTL is how long an acquisition or renewal holds the lease (default 30s). Renew at
	// most every TTL/3. Expiry is judged by timestamps in the value, so TTL must exceed the
	// clock skew between exporters by a wide margin.
	TTL time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// LeaseKey is the conventional lease key for the exporter of a fold of bucket.
func LeaseKey(bucket string) string { return "slipstream.export-lease." + bucket }

// leaseRecord is the lease key's value.
type leaseRecord struct {
	Holder   string    `json:"holder"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// Lease is a compare-and-swap lease in a NATS KV bucket, so only one exporter per fold
// runs at a time outside Kubernetes (in a cluster, a coordination.k8s.io Lease does the
// same). Every write is a CAS on the revision this holder last wrote, so a holder whose
// lease was taken over learns it (ErrLeaseLost) on its next Renew and can never extend or
// release someone else's lease.
//
// A lease is an optimisation, not the safety net: an exporter that loses it mid-upload
// still cannot regress the newest export (newest = highest cursor, names immutable).
type Lease struct {
	cfg LeaseConfig

	mu      sync.Mutex
	rev     uint64 // revision of our record; 0 when not held
	expires time.Time
}

// NewLease checks cfg and returns a lease that is not held.
func NewLease(cfg LeaseConfig) (*Lease, error) {
	switch {
	case cfg.Bucket == nil:
		return nil, errors.New("new lease: no bucket")
	case cfg.Holder == "":
		return nil, errors.New("new lease: no holder name")
	}
	if err := kv.ValidateKey(cfg.Key); err != nil {
		return nil, fmt.Errorf("new lease: %w", err)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Lease{cfg: cfg}, nil
}

// Acquire takes the lease when it is free, expired, or already ours. Errors: ErrLeaseHeld
// (another holder's unexpired lease, or a race lost to another acquirer), or a wrapped kv
// error.
func (l *Lease) Acquire(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	rec, err := json.Marshal(leaseRecord{Holder: l.cfg.Holder, Acquired: now.UTC(), Expires: now.Add(l.cfg.TTL).UTC()})
	if err != nil {
		return err
	}
	cur, err := l.cfg.Bucket.Entry(ctx, l.cfg.Key)
	var rev uint64
	switch {
	case errors.Is(err, kv.ErrKeyNotFound) || (err == nil && cur.Op != kv.OpPut):
		rev, err = l.cfg.Bucket.Create(ctx, l.cfg.Key, rec)
	case err != nil:
		return fmt.Errorf("acquire lease %q: %w", l.cfg.Key, err)
	default:
		var held leaseRecord
		if jerr := json.Unmarshal(cur.Value, &held); jerr == nil && held.Holder != l.cfg.Holder && now.Before(held.Expires) {
			l.rev = 0
			return fmt.Errorf("acquire lease %q: %w: %s holds it until %s", l.cfg.Key, ErrLeaseHeld, held.Holder, held.Expires.Format(time.RFC3339))
		}
		// Expired, unreadable, or ours: take it over with a CAS on what we read.
		rev, err = l.cfg.Bucket.Update(ctx, l.cfg.Key, rec, cur.Revision)
	}
	if errors.Is(err, kv.ErrAlreadyExists) || errors.Is(err, kv.ErrRevisionMismatch) {
		l.rev = 0
		return fmt.Errorf("acquire lease %q: %w: another exporter acquired it first", l.cfg.Key, ErrLeaseHeld)
	}
	if err != nil {
		return fmt.Errorf("acquire lease %q: %w", l.cfg.Key, err)
	}
	l.rev, l.expires = rev, now.Add(l.cfg.TTL)
	return nil
}

// Renew extends a held lease by TTL. Errors: ErrLeaseLost (not held, expired, or taken
// over: stop exporting), or a wrapped kv error (the lease may still be held until it
// expires; Held tells).
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	if l.rev == 0 || !now.Before(l.expires) {
		l.rev = 0
		return fmt.Errorf("renew lease %q: %w: not held", l.cfg.Key, ErrLeaseLost)
	}
	rec, err := json.Marshal(leaseRecord{Holder: l.cfg.Holder, Acquired: now.UTC(), Expires: now.Add(l.cfg.TTL).UTC()})
	if err != nil {
		return err
	}
	rev, err := l.cfg.Bucket.Update(ctx, l.cfg.Key, rec, l.rev)
	if errors.Is(err, kv.ErrRevisionMismatch) {
		l.rev = 0
		return fmt.Errorf("renew lease %q: %w: taken over", l.cfg.Key, ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("renew lease %q: %w", l.cfg.Key, err)
	}
	l.rev, l.expires = rev, now.Add(l.cfg.TTL)
	return nil
}

// Release gives the lease up (a CAS delete, so a lease taken over is left alone:
// ErrLeaseLost). Releasing a lease not held is a no-op.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rev == 0 {
		return nil
	}
	rev := l.rev
	l.rev = 0
	_, err := l.cfg.Bucket.DeleteWithVersion(ctx, l.cfg.Key, rev)
	if errors.Is(err, kv.ErrRevisionMismatch) {
		return fmt.Errorf("release lease %q: %w: taken over", l.cfg.Key, ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("release lease %q: %w", l.cfg.Key, err)
	}
	return nil
}

// Held reports whether this holder holds the lease by its own clock (it may have been
// taken over after expiry without it noticing yet: Renew does).
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev != 0 && l.cfg.Now().Before(l.expires)
}

// Expires returns when the held lease expires (zero when not held).
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rev == 0 {
		return time.Time{}
	}
	return l.expires
}
