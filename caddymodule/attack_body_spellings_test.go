package caddymodule_test

import (
	"net/http"
	"testing"
)

// A body names a method to a framework in spellings Go's own parsers
// read otherwise: a Content-Type Go refuses but Rack and PHP cut at ";",
// Laravel's JSON types, multipart part names and boundaries other
// parsers take, PHP's NUL-ended names, a lower-case "post". Each body
// below is a DELETE to the framework named, so with "@danger method
// DELETE PUT" it needs a login (jit_auth @danger: 401) or is refused
// before the handle block (400 from the site's cleaning step); with the
// first body readings they passed (200) and the upstream ran DELETE.

type spelledBody struct {
	name, method, contentType, body string
}

// bodySpellingSites are the two ways to protect DELETE and PUT, and the
// status each must give a body that names one of them, without a session.
var bodySpellingSites = []struct {
	name, site string
	want       int
}{
	{"jit_auth @danger", "\t@danger method DELETE PUT\n\tjit_auth @danger\n\treverse_proxy {UPSTREAM}", http.StatusUnauthorized},
	{"handle @danger", "\t@danger method DELETE PUT\n\thandle @danger {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}", http.StatusBadRequest},
}

func bodySpellingsNeedLogin(t *testing.T, cases []spelledBody) {
	t.Helper()
	for _, site := range bodySpellingSites {
		t.Run(site.name, func(t *testing.T) {
			base, _, _ := partialSite(t, site.site)
			for _, c := range cases {
				if got := sendBody(t, base, c.method, "/items/7", c.contentType, c.body, ""); got != site.want {
					t.Errorf("%s: %s /items/7, Content-Type %q, body %q, no session: %d, want %d",
						c.name, c.method, c.contentType, c.body, got, site.want)
				}
			}
		})
	}
}

func mpPart(boundary, headers, value string) string {
	return "--" + boundary + "\r\n" + headers + "\r\n\r\n" + value + "\r\n"
}

// A Content-Type that mime.ParseMediaType refuses (a parameter without a
// value, a comma, a repeated parameter) once made the body reading say
// "no framework reads this body", but Rack takes the media type up to the
// first ";" or "," (Rack::MediaType.type) and PHP cuts it at ";", ","
// or " " (SAPI), and both parse the body as a form.
func TestBodyMethodContentTypeGoRefuses(t *testing.T) {
	bodySpellingsNeedLogin(t, []spelledBody{
		{"parameter without a value", "POST", "application/x-www-form-urlencoded; charset", "_method=delete"},
		{"a comma after the type", "POST", "application/x-www-form-urlencoded, text/plain", "_method=delete"},
		{"boundary twice (Rack's regexp takes the last)", "POST", "multipart/form-data; boundary=A; boundary=B",
			mpPart("B", `Content-Disposition: form-data; name="_method"`, "delete") + "--B--\r\n"},
	})
}

// Laravel reads the body as JSON when its Content-Type contains "/json"
// or "+json" (Request::isJson), and takes its "_method": text/json is
// neither application/json nor a +json type, which was all the first
// body reading took for JSON.
func TestBodyMethodLaravelJSONTypes(t *testing.T) {
	bodySpellingsNeedLogin(t, []spelledBody{
		{"text/json", "POST", "text/json", `{"_method":"DELETE"}`},
		{"application/json5", "POST", "application/json5", `{"_method":"DELETE"}`},
	})
}

// Part names that Go's Part.FormName does not give (it answers "" unless
// the disposition is exactly form-data and its parameters parse), but
// PHP (rfc1867.c: any disposition, name= among its ;-separated words)
// and Rack (a regexp for name=, else Content-ID) read as _method.
func TestBodyMethodMultipartPartNames(t *testing.T) {
	bodySpellingsNeedLogin(t, []spelledBody{
		{"a bare parameter after the name", "POST", "multipart/form-data; boundary=XyZ",
			mpPart("XyZ", `Content-Disposition: form-data; name="_method"; x`, "delete") + "--XyZ--\r\n"},
		{"disposition attachment", "POST", "multipart/form-data; boundary=XyZ",
			mpPart("XyZ", `Content-Disposition: attachment; name="_method"`, "delete") + "--XyZ--\r\n"},
		{"named by Content-ID (Rack)", "POST", "multipart/mixed; boundary=XyZ",
			mpPart("XyZ", `Content-ID: _method`, "delete") + "--XyZ--\r\n"},
	})
}

// methodsInBody counts a multipart body in which Go finds no boundary
// (NextPart's error wraps io.EOF) as read whole, with no _method, when
// the upstream finds parts in it: the boundary read from another
// parameter (PHP takes the first "boundary" substring, Rack's regexp
// the last "boundary="), a delimiter after a bare LF (PHP looks for
// "\n--boundary" once in CRLF mode; Go then wants "\r\n--boundary").
func TestBodyMethodMultipartBoundariesGoMisses(t *testing.T) {
	bodySpellingsNeedLogin(t, []spelledBody{
		{"PHP: xboundary before boundary", "POST", "multipart/form-data; xboundary=B; boundary=A",
			mpPart("B", `Content-Disposition: form-data; name="_method"`, "delete") + "--B--\r\n"},
		{"Rack: xboundary after boundary", "POST", "multipart/form-data; boundary=A; xboundary=B",
			mpPart("B", `Content-Disposition: form-data; name="_method"`, "delete") + "--B--\r\n"},
		{"PHP: a delimiter after a bare LF", "POST", "multipart/form-data; boundary=XyZ",
			"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\n" +
				mpPart("XyZ", `Content-Disposition: form-data; name="_method"`, "delete") + "--XyZ--\r\n"},
	})
}

// PHP registers a form field under its name up to the first NUL
// (php_register_variable_ex uses strlen: "not binary safe"), so
// "_method%00x" is _method to Laravel and Symfony.
func TestBodyMethodPHPNameCutAtNUL(t *testing.T) {
	bodySpellingsNeedLogin(t, []spelledBody{
		{"form", "POST", "application/x-www-form-urlencoded", "_method%00x=delete"},
	})
}

// Symfony upper-cases REQUEST_METHOD before asking whether it is POST
// (Request::getMethod), and Laravel reads a JSON body's _method whatever
// the method, so "post" with {"_method":"DELETE"} is a DELETE to
// Laravel. bodyMayNameMethod reads a body only when r.Method is exactly
// "POST" (today's other reading already upper-cases "delete").
func TestBodyMethodLowerCasePost(t *testing.T) {
	bodySpellingsNeedLogin(t, []spelledBody{
		{"post + JSON", "post", "application/json", `{"_method":"DELETE"}`},
	})
}

// Not from today's commits, but the same readings: methodOverrides reads
// the query's _method only when the raw query contains "_method", and
// then by Go's key, so an escaped underscore (Express's method-override
// and Symfony/Laravel decode "%5Fmethod" to _method) and PHP's spellings
// that isMethodField now knows for bodies (".method", a name cut at a
// NUL) are not read in the query. Symfony and Laravel take the query's
// _method when the body has none.
func TestQueryMethodSpellings(t *testing.T) {
	for _, site := range bodySpellingSites {
		t.Run(site.name, func(t *testing.T) {
			base, _, _ := partialSite(t, site.site)
			for _, q := range []string{"%5Fmethod=DELETE", ".method=DELETE", "_method%00x=DELETE"} {
				if got := sendBody(t, base, "POST", "/items/7?"+q, "text/plain", "x", ""); got != site.want {
					t.Errorf("POST /items/7?%s, no session: %d, want %d", q, got, site.want)
				}
			}
		})
	}
}
