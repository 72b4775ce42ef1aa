package connector

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A provider's answer is read whole up to MaxProviderAnswer and no
// further: one byte more fails with ErrAnswerTooLarge, naming the
// address without its query.
func TestProviderClientBoundsAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := MaxProviderAnswer
		if r.URL.Path == "/over" {
			n++
		}
		_, _ = io.WriteString(w, strings.Repeat("a", n))
	}))
	defer srv.Close()
	c := NewProviderClient(5 * time.Second)
	for _, tt := range []struct {
		path    string
		wantErr bool
	}{{"/exact", false}, {"/over", true}} {
		resp, err := c.Get(srv.URL + tt.path + "?access_token=secret")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !tt.wantErr {
			if err != nil || len(body) != MaxProviderAnswer {
				t.Errorf("%s: read %d bytes, %v; want all %d", tt.path, len(body), err, MaxProviderAnswer)
			}
			continue
		}
		if !errors.Is(err, ErrAnswerTooLarge) {
			t.Errorf("%s: err %v, want ErrAnswerTooLarge", tt.path, err)
		}
		if len(body) > MaxProviderAnswer {
			t.Errorf("%s: read %d bytes, more than %d", tt.path, len(body), MaxProviderAnswer)
		}
		if err != nil && (strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), tt.path)) {
			t.Errorf("%s: error %q should name the path and not the query", tt.path, err)
		}
	}
}
