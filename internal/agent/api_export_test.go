package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slipstream-dev/slipstream/pkg/export"
)

// TestAPIExportCodes: POST /v1/export maps each outcome of starting an export to its code.
func TestAPIExportCodes(t *testing.T) {
	var next error
	ta := newTestAPI(t, func(c *apiConfig) {
		c.Export = func(context.Context) error { return next }
		c.Token = "tok"
	})
	post := func(method string, auth bool) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), method, ta.srv.URL+"/v1/export", nil)
		if auth {
			req.Header.Set("Authorization", "Bearer tok")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		err  error
		code int
		want string
	}{
		{nil, 202, `"started"`},
		{errExportBusy, 409, "export_running"},
		{fmt.Errorf("acquire: %w: b holds it", export.ErrLeaseHeld), 409, "not_lease_holder"},
		{fmt.Errorf("%w (phase CatchingUp)", errNotLive), 409, "not_live"},
		{errExportNotReady, 503, "not_ready"},
		{errors.New("nats: timeout"), 503, "lease_unavailable"},
	}
	for _, c := range cases {
		next = c.err
		if code, body := post(http.MethodPost, true); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("export error %v: %d %s, want %d %s", c.err, code, body, c.code, c.want)
		}
	}
	if code, _ := post(http.MethodPost, false); code != 401 {
		t.Errorf("POST without token: %d, want 401", code)
	}
	if code, _ := post(http.MethodGet, true); code != 405 {
		t.Errorf("GET /v1/export: %d, want 405", code)
	}
	if code, _ := post(http.MethodPost, true); code == 405 {
		t.Error("POST refused as a method")
	}
	ta2 := newTestAPI(t, nil)
	resp, err := http.Post(ta2.srv.URL+"/v1/export", "", nil) //nolint:noctx // test
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("POST /v1/export without exports: %d, want 404", resp.StatusCode)
	}
	// Other routes stay GET-only.
	resp, err = http.Post(ta2.srv.URL+"/v1/status", "", nil) //nolint:noctx // test
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST /v1/status: %d, want 405", resp.StatusCode)
	}
}
