package export

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

type apiErr struct{ code string }

func (e apiErr) Error() string     { return "api error " + e.code }
func (e apiErr) ErrorCode() string { return e.code }

type statusErr struct{ status int }

func (e statusErr) Error() string       { return fmt.Sprintf("http %d", e.status) }
func (e statusErr) HTTPStatusCode() int { return e.status }

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("op: %w", apiErr{"InvalidAccessKeyId"}), ErrAccessDenied},
		{apiErr{"SignatureDoesNotMatch"}, ErrAccessDenied},
		{apiErr{"NoSuchBucket"}, ErrUnavailable},
		{statusErr{403}, ErrAccessDenied},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, ErrUnavailable},
	} {
		if got := classify(tc.err, nil); !errors.Is(got, tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("classify(%v) = %v, want %v wrapping the original", tc.err, got, tc.want)
		}
	}
	plain := errors.New("something else")
	if got := classify(plain, nil); !errors.Is(got, plain) || got.Error() != plain.Error() {
		t.Errorf("classify(unknown) = %v, want it unchanged", got)
	}
}

func TestExpired(t *testing.T) {
	now := time.Unix(10_000, 0)
	old := now.Add(-2 * time.Hour)
	objs := []Object{
		{Key: "5", Cursor: 5, Created: old},
		{Key: "4", Cursor: 4, Created: old},
		{Key: "3", Cursor: 3, Created: now.Add(-time.Minute)},               // young by name
		{Key: "2", Cursor: 2, Created: old, ModTime: now.Add(-time.Minute)}, // young by upload
		{Key: "1", Cursor: 1, Created: old},
	}
	keys := func(os []Object) (out []string) {
		for _, o := range os {
			out = append(out, o.Key)
		}
		return out
	}
	for _, tc := range []struct {
		r    Retention
		want []string
	}{
		{Retention{Keep: 2, Grace: time.Hour}, []string{"1"}},
		{Retention{Keep: 2}, []string{"3", "2", "1"}},
		{Retention{Keep: 0}, []string{"4", "3", "2", "1"}},
		{Retention{Keep: 10}, nil},
	} {
		if got := keys(Expired(objs, tc.r, now)); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Expired(%+v) = %v, want %v", tc.r, got, tc.want)
		}
	}
}
