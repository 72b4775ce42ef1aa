package legacyapp

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPageShowsEscapedHeaders(t *testing.T) {
	req := httptest.NewRequest("GET", "/some/page", nil)
	req.Header.Set(HeaderUser, "alice@example.com")
	req.Header.Set(HeaderName, `<script>alert("x")</script>`)
	req.Header.Set(HeaderGroups, "staff, admins")
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)

	body := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{
		`<strong id="user">alice@example.com</strong>`,
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
		`staff, admins`,
		`href="/.jitauth/logout"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("header value not escaped")
	}
}

func TestWhoAmI(t *testing.T) {
	req := httptest.NewRequest("GET", "/api/whoami", nil)
	req.Header.Set(HeaderUser, "bob@example.com")
	req.Header.Set(HeaderGroups, "a,b")
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	var id Identity
	if err := json.Unmarshal(rec.Body.Bytes(), &id); err != nil {
		t.Fatal(err)
	}
	if id.User != "bob@example.com" || strings.Join(id.Groups, "|") != "a|b" {
		t.Errorf("%+v", id)
	}

	rec = httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/whoami", nil))
	if !strings.Contains(rec.Body.String(), `"groups":[]`) || !strings.Contains(rec.Body.String(), `"user":""`) {
		t.Errorf("anonymous: %s", rec.Body)
	}
}

// A header jit_auth sent empty (a user without groups) is shown as such,
// not as missing.
func TestPageTellsEmptyFromMissing(t *testing.T) {
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set(HeaderUser, "carol")
	req.Header.Set(HeaderGroups, "")
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, want := range []string{
		"<td><code>Remote-Groups</code></td><td><span class=\"none\">(sent, empty)</span></td>",
		"<td><code>Remote-Email</code></td><td><span class=\"none\">(not sent)</span></td>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
}
