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

// StaleUpload is how long an unfinished upload's temporary file must have gone unwritten
// (or Retention.Grace, when longer) before Prune takes it for the leftover of a crashed
// exporter and deletes it. An upload in progress writes its file continuously; if one
// stalls for longer, deleting its file only makes that upload fail (it never appears).
const StaleUpload = 15 * time.Minute

// Prune deletes the exports of bucket that retention does not keep, and the stale
// temporary files of unfinished uploads (Listing.Temp), and returns them. The newest
// export is never deleted, nor one younger than the grace period (by the later of its
// name's creation time and its modification time), nor any object that is neither an
// export nor an upload's temporary file. A failed delete is returned (with the objects
// deleted before it).
func (l *Location) Prune(ctx context.Context, bucket string, r Retention, now time.Time) ([]Object, error) {
	ls, err := l.List(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("prune exports: %w", err)
	}
	var deleted []Object
	for _, o := range append(Expired(ls.Exports, r, now), StaleTemp(ls.Temp, r, now)...) {
		if err := l.Delete(ctx, o); err != nil {
			return deleted, fmt.Errorf("prune exports: %w", err)
		}
		deleted = append(deleted, o)
	}
	return deleted, nil
}

// StaleTemp returns the upload temporary files not written to for StaleUpload (or
// r.Grace, when longer) at now.
func StaleTemp(temp []Object, r Retention, now time.Time) []Object {
	age := max(r.Grace, StaleUpload)
	var out []Object
	for _, o := range temp {
		if now.Sub(o.ModTime) >= age {
			out = append(out, o)
		}
	}
	return out
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
