package caddymodule_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"
	"time"
	"unicode/utf16"
)

// Rack 2.x (Rails 6/7.0: Rack::QueryParser#normalize_params takes the key
// as `\A[\[\]]*([^\[\]]+)\]*`) and qs (Express's urlencoded parser, read
// by method-override's documented req.body._method getter) both read
// "[_method]" as _method; Rack 2 also "_method]" and "]_method".
// isMethodField knows only PHP's spellings, so these POSTs pass
// "@danger method DELETE PUT" without a login and the upstream runs
// DELETE.
func TestBodyMethodBracketSpellings(t *testing.T) {
	bodySpellingsNeedLogin(t, []spelledBody{
		{"qs and Rack 2: [_method]", "POST", "application/x-www-form-urlencoded", "[_method]=delete"},
		{"Rack 2: _method]", "POST", "application/x-www-form-urlencoded", "_method]=delete"},
		{"Rack 2: ]_method", "POST", "application/x-www-form-urlencoded", "]_method=delete"},
		{"Rack 2, no Content-Type: [_method]", "POST", "", "[_method]=delete"},
	})
}

// Express's body-parser inflates a gzip or deflate request body
// (inflate: true, the default) and decodes a JSON body in the charset
// its Content-Type names (iconv-lite: utf-16le …), before
// method-override's documented req.body._method getter reads it.
// bodyMethods reads the bytes as sent, finds no _method, and the POST
// passes "@danger method DELETE PUT" without a login.
func TestBodyMethodEncodedBodies(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("_method=DELETE"))
	zw.Close()
	var u16 []byte
	for _, c := range utf16.Encode([]rune(`{"_method":"DELETE"}`)) {
		u16 = append(u16, byte(c), byte(c>>8))
	}
	cases := []struct {
		name   string
		header http.Header
		body   []byte
	}{
		{"gzip form", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Content-Encoding": {"gzip"}}, gz.Bytes()},
		{"utf-16le JSON", http.Header{"Content-Type": {"application/json; charset=utf-16le"}}, u16},
	}
	for _, site := range bodySpellingSites {
		t.Run(site.name, func(t *testing.T) {
			base, _, _ := partialSite(t, site.site)
			for _, c := range cases {
				req, _ := http.NewRequest("POST", base+"/items/7", bytes.NewReader(c.body))
				for k, v := range c.header {
					req.Header[k] = v
				}
				req.Header.Set("Accept", "application/json")
				client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != site.want {
					t.Errorf("%s: POST /items/7 (a DELETE to Express), no session: %d, want %d", c.name, resp.StatusCode, site.want)
				}
			}
		})
	}
}

// multipartMethods once answered "sure, no method" for a body in which
// the literal text "method" does not occur, before parsing it. But a part
// name can be spelled without that text: RFC 2231/5987 extended
// parameters (name*=utf-8”%5Fm%65thod), which Go's own
// mime.ParseMediaType (so Part.FormName) and busboy (multer, read by
// method-override's documented req.body._method getter) decode to
// "_method". So this DELETE passed "@danger method DELETE PUT" without
// a login; a body that spells a name that way is now read.
func TestBodyMethodMultipartExtendedName(t *testing.T) {
	bodySpellingsNeedLogin(t, []spelledBody{
		{"name*= (RFC 2231)", "POST", "multipart/form-data; boundary=XyZ",
			mpPart("XyZ", `Content-Disposition: form-data; name*=utf-8''%5Fm%65thod`, "delete") + "--XyZ--\r\n"},
	})
}
