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

// The provider client follows a redirect of a GET within https, and
// none that could carry a credential elsewhere: of a POST (a token
// request, with the client secret in it), or from https to plain http
// (userinfo's Authorization header would go in the clear).
func TestProviderClientRedirects(t *testing.T) {
	c := NewProviderClient(time.Second)
	req := func(method, u string) *http.Request {
		r, err := http.NewRequest(method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tt := range []struct {
		from, method, to string
		follow           bool
	}{
		{"https://idp.example/jwks", http.MethodGet, "https://cdn.example/jwks", true},
		{"http://localhost:8080/jwks", http.MethodGet, "http://localhost:8080/keys", true},
		{"https://idp.example/userinfo", http.MethodGet, "http://idp.example/userinfo", false},
		{"https://idp.example/token", http.MethodPost, "https://idp.example/token2", false},
		{"https://idp.example/token", http.MethodPost, "https://elsewhere.example/token", false},
	} {
		// net/http turns a 302's POST into the GET it then asks about.
		err := c.CheckRedirect(req(http.MethodGet, tt.to), []*http.Request{req(tt.method, tt.from)})
		if (err == nil) != tt.follow {
			t.Errorf("%s %s -> %s: %v, follow %v", tt.method, tt.from, tt.to, err, tt.follow)
		}
	}
}
