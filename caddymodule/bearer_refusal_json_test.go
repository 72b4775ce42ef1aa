package caddymodule_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// A refused token's reason may quote what the token says (its audience),
// and is cut at 200 bytes. Cut in the middle of a UTF-8 character, the
// stray byte reached the body, which says it is JSON, as %q's \xc3: no
// JSON escape, so the client's parser failed on the refusal instead of
// reading why.
func TestBearerRefusalIsJSONWhateverTheTokenSays(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		handlerBlock: "\t\tbearer corp {\n\t\t\taudience api://wiki\n\t\t}\n",
	})
	for pad := range 2 {
		c := bearerClaims(s.idp.Config().Issuer, "alice-sub")
		c["aud"] = strings.Repeat("x", pad) + "api://" + strings.Repeat("é", 150)
		code, body, wa := callAPI(t, s.base, signWith(t, s.idp.Keypair, c))
		if code != http.StatusUnauthorized || !strings.HasPrefix(wa, "Bearer error=") {
			t.Fatalf("pad %d: %d %q %q", pad, code, body, wa)
		}
		var got struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil || got.Error != "invalid_token" || !strings.Contains(got.Description, "audience") {
			t.Errorf("pad %d: the refusal's body is not the JSON it says it is (%v): %q", pad, err, body)
		}
		if !utf8.ValidString(wa) || strings.Contains(wa, `\x`) {
			t.Errorf("pad %d: WWW-Authenticate carries a broken character: %q", pad, wa)
		}
	}
}
