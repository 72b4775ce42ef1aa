package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// postBody is a request whose body names a method the way a framework
// reads it: a Rails button's form, a multipart upload, Laravel's JSON.
type postBody struct {
	contentType, body string
}

func formBody(fields string) postBody {
	return postBody{"application/x-www-form-urlencoded", fields}
}

const multipartMethod = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n" +
	"--XyZ\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nput\r\n--XyZ--\r\n"

// padding makes a form longer than jit_auth reads for a _method.
var padding = "pad=" + strings.Repeat("x", 70<<10)

// postStatus sends POST path with body (and cookie, when not empty) and
// returns the status and, when the upstream answered, what it received.
func postStatus(t *testing.T, base string, up *recordingUpstream, path string, b postBody, cookie string) (int, *seenRequest) {
	t.Helper()
	status := sendBody(t, base, http.MethodPost, path, b.contentType, b.body, cookie)
	if seen, ok := up.take(path); ok {
		return status, &seen
	}
	return status, nil
}

// sendBody sends method path with the body and content type given, as an
// API client (Accept: application/json, redirects not followed), with the
// session cookie when not empty, and returns the status.
func sendBody(t *testing.T, base, method, path, contentType, body, cookie string) int {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "jitauth_session", Value: cookie})
	}
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// S10: Rails, Laravel and Symfony take a POST for the method its body's
// _method field names, so "@danger method DELETE PUT" would let every
// Rails "Delete" button pass. The body's method is a reading like the
// query's; a body too long to read for it asks for a login; the upstream
// still gets the whole body.
func TestBodyMethodCannotWalkAroundAMethodMatcher(t *testing.T) {
	for _, tc := range []struct {
		name, site string
		want       map[string]int // case -> status without a session
	}{
		{
			name: "jit_auth @danger (method DELETE PUT)",
			site: "\t@danger method DELETE PUT\n\tjit_auth @danger\n\treverse_proxy {UPSTREAM}",
			want: map[string]int{
				"rails delete": 401, "laravel json": 401, "multipart put": 401, "no content type": 401,
				"php spelling": 401, "after padding": 401, "too long to tell": 401,
				"patch": 200, "no method": 200, "text": 200,
			},
		},
		{
			name: "handle @danger (method DELETE PUT)",
			site: "\t@danger method DELETE PUT\n\thandle @danger {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}",
			want: map[string]int{
				"rails delete": 400, "laravel json": 400, "multipart put": 400, "no content type": 400,
				"php spelling": 400, "after padding": 400, "too long to tell": 400,
				"patch": 200, "no method": 200, "text": 200,
			},
		},
		{
			// Methods do not matter here: no body is read, a long one passes.
			name: "jit_auth /admin/*",
			site: "\tjit_auth /admin/*\n\treverse_proxy {UPSTREAM}",
			want: map[string]int{
				"rails delete": 200, "laravel json": 200, "multipart put": 200, "no content type": 200,
				"php spelling": 200, "after padding": 200, "too long to tell": 200,
				"patch": 200, "no method": 200, "text": 200,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, up, _ := partialSite(t, tc.site)
			bodies := map[string]postBody{
				"rails delete":     formBody("_method=delete&authenticity_token=abc"),
				"laravel json":     {"application/json", `{"name":"x","_method":"DELETE"}`},
				"multipart put":    {"multipart/form-data; boundary=XyZ", multipartMethod},
				"no content type":  {"", "_method=delete"},
				"php spelling":     formBody("a=1&.method=put"),
				"after padding":    formBody(padding[:60<<10] + "&_method=delete"),
				"too long to tell": formBody(padding + "&a=b"),
				"patch":            formBody("_method=patch"),
				"no method":        formBody("a=1&b=2"),
				"text":             {"text/plain", "_method=delete"},
			}
			for name, want := range tc.want {
				b := bodies[name]
				got, seen := postStatus(t, base, up, "/x", b, "")
				if got != want {
					t.Errorf("%s: POST /x without a session: %d, want %d", name, got, want)
				}
				if got == http.StatusOK && (seen == nil || seen.body != b.body) {
					t.Errorf("%s: the upstream did not get the body as sent", name)
				}
			}
		})
	}
}

// A signed-in user's form goes through with its whole body, its method
// read and its identity set.
func TestSignedInFormWithABodyMethodReachesTheUpstream(t *testing.T) {
	base, up, login := partialSite(t, "\t@danger method DELETE PUT\n\tjit_auth @danger\n\treverse_proxy {UPSTREAM}")
	cookie := login()
	for _, b := range []postBody{formBody("_method=delete&id=7"), formBody("_method=delete&" + padding)} {
		got, seen := postStatus(t, base, up, "/items/7", b, cookie)
		if got != http.StatusOK || seen == nil {
			t.Fatalf("POST with _method=delete, signed in: %d", got)
		}
		if seen.body != b.body {
			t.Errorf("the upstream got %d bytes of the %d sent", len(seen.body), len(b.body))
		}
		if seen.header.Get("Remote-User") == "" {
			t.Error("the upstream got no identity")
		}
	}
}
