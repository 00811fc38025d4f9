package export

import (
	"context"
	"fmt"
	"time"
)

// Retention says which exports Prune keeps.
type Retention struct {
	// Keep is how many of the newest exports to keep (values below 1 mean 1).
	Keep int
	// Grace protects young exports: one created or modified less than Grace ago is never
	// deleted, so a seeding node that just listed it can still download it.
	Grace time.Duration
}

// DefaultRetention keeps the 3 newest exports and anything younger than an hour.
var DefaultRetention = Retention{Keep: 3, Grace: time.Hour}

// Prune deletes the exports of bucket that retention does not keep and returns them. The
// newest export is never deleted, nor one younger than the grace period (by the later of
// its name's creation time and its modification time), nor any object that is not an
// export name. A failed delete is returned (with the exports deleted before it).
func (l *Location) Prune(ctx context.Context, bucket string, r Retention, now time.Time) ([]Object, error) {
	ls, err := l.List(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("prune exports: %w", err)
	}
	var deleted []Object
	for _, o := range Expired(ls.Exports, r, now) {
		if err := l.Delete(ctx, o); err != nil {
			return deleted, fmt.Errorf("prune exports: %w", err)
		}
		deleted = append(deleted, o)
	}
	return deleted, nil
}

// Expired returns the exports (listed newest first) that retention r lets go at now.
func Expired(newestFirst []Object, r Retention, now time.Time) []Object {
	keep := max(r.Keep, 1)
	var out []Object
	for i, o := range newestFirst {
		if i < keep {
			continue
		}
		age := o.Created
		if o.ModTime.After(age) {
			age = o.ModTime
		}
		if now.Sub(age) < r.Grace {
			continue
		}
		out = append(out, o)
	}
	return out
}
