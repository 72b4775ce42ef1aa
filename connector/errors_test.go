package connector

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// S13: an error of an exchange with a provider reaches the log bounded,
// without control characters and without the tokens and secrets the
// provider's answer quotes, whatever shape it has: go-oidc's
// "<status>: <body>", an *oauth2.RetrieveError (whose Error prints the
// body), or a wrapped one.
func TestProviderErrorTextIsBoundedAndRedacted(t *testing.T) {
	const token, secret = "at-3f9c2e7d1b", "s3cr3t-client"
	body := `{"error":"invalid_token","error_description":"token ` + token + ` refused for client ` + secret + `"}` + strings.Repeat("x", 10<<10)
	retrieve := func(status int, code, desc string) error {
		return &oauth2.RetrieveError{
			Response:         &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status))},
			Body:             []byte(body),
			ErrorCode:        code,
			ErrorDescription: desc,
		}
	}
	errs := map[string]error{
		"go-oidc userinfo": fmt.Errorf("401 Unauthorized: %s", body),
		"wrapped":          fmt.Errorf("userinfo: %w", fmt.Errorf("401 Unauthorized: %s", body)),
		"retrieve 5xx":     retrieve(503, "", ""),
		"retrieve 4xx":     retrieve(400, "invalid_grant", "token "+token+" is not valid"),
		"control chars":    errors.New("500 Internal Server Error: line\nforged " + token),
	}
	for name, err := range errs {
		for _, text := range []string{SaidErr(err, token, secret), ProviderError("userinfo", err, token, secret).Error()} {
			if strings.Contains(text, token) || strings.Contains(text, secret) {
				t.Errorf("%s: %q holds a secret", name, text)
			}
			if len(text) > maxSaid+100 {
				t.Errorf("%s: %d bytes; want at most about %d", name, len(text), maxSaid)
			}
			if strings.ContainsAny(text, "\n\r") {
				t.Errorf("%s: %q holds a control character", name, text)
			}
		}
	}
	if got := SaidErr(retrieve(503, "", "")); !strings.HasPrefix(got, "503 Service Unavailable") {
		t.Errorf("a 503 without an error code reads %q; want its status", got)
	}
	if got := SaidErr(retrieve(400, "invalid_grant", "expired")); got != "400 Bad Request: invalid_grant: expired" {
		t.Errorf("a 400 invalid_grant reads %q", got)
	}
	// The kind of error is kept.
	if err := ProviderError("fetching user", retrieve(503, "", "")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("a 5xx is %v; want ErrUnavailable", err)
	}
	if err := ProviderError("fetching user", retrieve(401, "invalid_token", "")); !errors.Is(err, ErrRejected) {
		t.Errorf("a 401 is %v; want ErrRejected", err)
	}
}
