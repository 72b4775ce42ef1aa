package caddymodule

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestMethodsInBody(t *testing.T) {
	const mp = "multipart/form-data; boundary=XyZ"
	part := func(name, value string) string {
		return "--XyZ\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n"
	}
	for _, c := range []struct {
		name, contentType, body string
		want                    []string
		unknown                 bool
	}{
		{"a Rails form", "application/x-www-form-urlencoded", "_method=delete&authenticity_token=abc", []string{"DELETE"}, false},
		{"charset", "application/x-www-form-urlencoded; charset=UTF-8", "a=1&_method=put", []string{"PUT"}, false},
		{"no content type (Rack reads it as a form)", "", "_method=patch", []string{"PATCH"}, false},
		{"escaped name and value", "application/x-www-form-urlencoded", "%5Fmethod=%44ELETE", []string{"DELETE"}, false},
		{"Rack 2's ; separator", "application/x-www-form-urlencoded", "a=1;_method=delete", []string{"DELETE"}, false},
		{"PHP's spellings (leading spaces dropped first)", "application/x-www-form-urlencoded", ".method=put&+method=patch&%20_method=delete&[method=lock", []string{"PUT", "DELETE", "LOCK"}, false},
		{"each value", "application/x-www-form-urlencoded", "_method=get&_method=delete", []string{"GET", "DELETE"}, false},
		{"malformed escape", "application/x-www-form-urlencoded", "x=%zz&_method=DEL%ETE", []string{"DEL%ETE"}, false},
		{"other fields", "application/x-www-form-urlencoded", "method=delete&a_method=put&_methods=patch&_method", nil, false},
		{"too long for a method", "application/x-www-form-urlencoded", "_method=" + strings.Repeat("A", 21), nil, false},
		{"multipart", mp, part("file", "xx") + part("_method", "delete") + "--XyZ--\r\n", []string{"DELETE"}, false},
		{"multipart, PHP's spelling", mp, part(".method", "put") + "--XyZ--\r\n", []string{"PUT"}, false},
		{"multipart, none", mp, part("a", "b") + "--XyZ--\r\n", nil, false},
		{"multipart/mixed (Rack reads it as a form)", "multipart/mixed; boundary=XyZ", part("_method", "patch") + "--XyZ--\r\n", []string{"PATCH"}, false},
		{"multipart that does not parse, naming a method", mp, "--XyZ\r\nContent-Disposition: form-data; name=\"_method\"\r\nno headers end", nil, true},
		{"multipart that does not parse, naming none", mp, "--XyZ\r\nno headers end", nil, false},
		{"multipart, a name Go refuses", mp, "--XyZ\r\nContent-Disposition: form-data; name=\"_method\"; x\r\n\r\ndelete\r\n--XyZ--\r\n", nil, true},
		{"multipart, another disposition", mp, "--XyZ\r\nContent-Disposition: attachment; name=\"_method\"\r\n\r\ndelete\r\n--XyZ--\r\n", nil, true},
		{"multipart, a Content-ID", "multipart/mixed; boundary=XyZ", "--XyZ\r\nContent-ID: _method\r\n\r\ndelete\r\n--XyZ--\r\n", nil, true},
		{"multipart, two boundaries", "multipart/form-data; boundary=A; xboundary=XyZ", part("_method", "delete") + "--XyZ--\r\n", nil, true},
		{"multipart, payment_method beside", mp, part("payment_method", "card") + "--XyZ--\r\n", nil, false},
		{"multipart, a file that says method", mp, part("file", "the method is _method") + "--XyZ--\r\n", nil, true},
		{"multipart, Rack's brackets", mp, part("[_method]", "delete") + "--XyZ--\r\n", []string{"DELETE"}, false},
		{"multipart, an RFC 2231 name", mp, "--XyZ\r\nContent-Disposition: form-data; name*=utf-8''%5Fm%65thod\r\n\r\ndelete\r\n--XyZ--\r\n", nil, true},
		{"Rack's brackets", "application/x-www-form-urlencoded", "%5B_method%5D=delete&_method%5D=put", []string{"DELETE", "PUT"}, false},
		{"PHP's NUL", "application/x-www-form-urlencoded", "_method%00x=delete", []string{"DELETE"}, false},
		{"a type Go refuses (Rack reads up to ;)", "application/x-www-form-urlencoded; charset", "_method=delete", []string{"DELETE"}, false},
		{"a list of types", "application/x-www-form-urlencoded, text/plain", "_method=delete", []string{"DELETE"}, false},
		{"Laravel's JSON test", "text/json", `{"_method":"delete"}`, []string{"DELETE"}, false},
		{"JSON (Laravel)", "application/json", `{"a":1,"_method":"delete"}`, []string{"DELETE"}, false},
		{"JSON API type", "application/vnd.api+json", `{"_method":"put"}`, []string{"PUT"}, false},
		{"JSON without one", "application/json", `{"method":"put","_method":1}`, nil, false},
		{"JSON that does not parse", "application/json", `{"_method":"put"`, nil, false},
		{"text", "text/plain", "_method=delete", nil, false},
		{"bad content type (read as the form it names)", "application/x-www-form-urlencoded; =", "_method=delete", []string{"DELETE"}, false},
	} {
		got, known := methodsInBody(c.contentType, []byte(c.body))
		if !slices.Equal(got, c.want) || known == c.unknown {
			t.Errorf("%s: %q known=%v, want %q known=%v", c.name, got, known, c.want, !c.unknown)
		}
	}
}

func TestBodyMayNameMethod(t *testing.T) {
	mk := func(method, contentType, body string) *http.Request {
		r, _ := http.NewRequest(method, "http://app.test/x", strings.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		return r
	}
	for _, c := range []struct {
		r    *http.Request
		want bool
	}{
		{mk("POST", "application/x-www-form-urlencoded", "a=b"), true},
		{mk("POST", "", "a=b"), true},
		{mk("POST", "multipart/form-data; boundary=x", "a"), true},
		{mk("POST", "application/json", "{}"), true},
		{mk("POST", "application/x-www-form-urlencoded", ""), false}, // no body
		{mk("PUT", "application/x-www-form-urlencoded", "_method=delete"), false},
		{mk("GET", "", ""), false},
		{mk("POST", "image/png", "x"), false},
		{mk("post", "application/json", "{}"), true}, // Symfony upper-cases it
	} {
		if got := bodyMayNameMethod(c.r); got != c.want {
			t.Errorf("%s %q: %v, want %v", c.r.Method, c.r.Header.Get("Content-Type"), got, c.want)
		}
	}
}

// The body is read at most maxBodyPeek bytes far, and the upstream still
// reads all of it, or the error that reading it met.
func TestBodyMethodsGiveTheBodyBack(t *testing.T) {
	form := func(n int) string {
		s := "_method=delete&pad="
		return s + strings.Repeat("x", n-len(s))
	}
	for _, c := range []struct {
		name        string
		body        string
		length      int64 // -1: unknown (chunked)
		want        []string
		known       bool
		maxConsumed int
	}{
		{"small", form(100), 100, []string{"DELETE"}, true, 100},
		{"exactly the bound", form(maxBodyPeek), maxBodyPeek, []string{"DELETE"}, true, maxBodyPeek},
		{"chunked, within the bound", form(1000), -1, []string{"DELETE"}, true, 1000},
		{"chunked, past the bound", form(maxBodyPeek + 1), -1, nil, false, maxBodyPeek + 1},
		{"longer than the bound, said up front", form(maxBodyPeek + 10), maxBodyPeek + 10, nil, false, 0},
	} {
		src := &countingReader{r: strings.NewReader(c.body)}
		r, _ := http.NewRequest(http.MethodPost, "http://app.test/x", io.NopCloser(src))
		r.ContentLength = c.length
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		got, known := bodyMethods(r)
		if !slices.Equal(got, c.want) || known != c.known {
			t.Errorf("%s: %q known=%v, want %q known=%v", c.name, got, known, c.want, c.known)
		}
		if src.n > c.maxConsumed {
			t.Errorf("%s: read %d bytes before the upstream, want at most %d", c.name, src.n, c.maxConsumed)
		}
		if rest, err := io.ReadAll(r.Body); err != nil || string(rest) != c.body {
			t.Errorf("%s: the upstream would read %d bytes (%v), want the %d sent", c.name, len(rest), err, len(c.body))
		}
	}

	broken := errors.New("client went away")
	r, _ := http.NewRequest(http.MethodPost, "http://app.test/x", io.NopCloser(io.MultiReader(strings.NewReader("_method=del"), iotest.ErrReader(broken))))
	r.ContentLength = -1
	if _, known := bodyMethods(r); known {
		t.Error("a body that failed to read: known")
	}
	rest, err := io.ReadAll(r.Body)
	if string(rest) != "_method=del" || !errors.Is(err, broken) {
		t.Errorf("a body that failed to read: the upstream reads %q, %v; want what came and the error", rest, err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// The body is read only when a method it could name changes the answer;
// then its method counts, and a body that cannot be read whole asks for
// a login.
func TestFormReadingsReadTheBodyOnlyWhenItMatters(t *testing.T) {
	deleteOnly := func(r *http.Request) (bool, error) { return r.Method == http.MethodDelete, nil }
	never := func(*http.Request) (bool, error) { return false, nil }
	mk := func(body string, length int64) (*http.Request, *countingReader) {
		src := &countingReader{r: strings.NewReader(body)}
		r, _ := http.NewRequest(http.MethodPost, "http://app.test/x", io.NopCloser(src))
		r.ContentLength = length
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r, src
	}
	for _, c := range []struct {
		name     string
		body     string
		length   int64
		try      func(*http.Request) (bool, error)
		want     bool
		wantRead bool
	}{
		{"names DELETE", "_method=delete", 14, deleteOnly, true, true},
		{"names PUT", "_method=put", 11, deleteOnly, false, true},
		{"names nothing", "a=b", 3, deleteOnly, false, true},
		{"no method matters", "_method=delete", 14, never, false, false},
		{"too long to read", "_method=delete", maxBodyPeek + 1, deleteOnly, true, false},
	} {
		r, src := mk(c.body, c.length)
		got, err := eachOtherReading(r, c.try)
		if err != nil || got != c.want {
			t.Errorf("%s: %v (%v), want %v", c.name, got, err, c.want)
		}
		if read := src.n > 0; read != c.wantRead {
			t.Errorf("%s: body read %v, want %v", c.name, read, c.wantRead)
		}
		if r.Method != http.MethodPost {
			t.Errorf("%s: the request was not put back: %s", c.name, r.Method)
		}
	}
	// A method the body names outside the usual ones counts once the
	// body is read (PUT makes it worth reading here).
	putOrFrob := func(r *http.Request) (bool, error) { return r.Method == "FROBNICATE" || r.Method == "PUT", nil }
	for body, want := range map[string]bool{"_method=frobnicate": true, "_method=other": false} {
		r, _ := mk(body, int64(len(body)))
		if ok, _ := eachOtherReading(r, putOrFrob); ok != want {
			t.Errorf("a body %q: %v, want %v", body, ok, want)
		}
	}
}

func FuzzMethodsInBody(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", []byte("_method=delete&a=%zz;b"))
	f.Add("multipart/form-data; boundary=XyZ", []byte("--XyZ\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nput\r\n--XyZ--\r\n"))
	f.Add("application/json", []byte(`{"_method":"patch"}`))
	f.Add("", []byte(".method=put"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		methods, _ := methodsInBody(contentType, body)
		for _, m := range methods {
			if m == "" || len(m) > maxMethodLen || m != strings.ToUpper(m) {
				t.Fatalf("%q: method %q", body, m)
			}
		}
		r, _ := http.NewRequest(http.MethodPost, "http://app.test/x", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.ContentLength = -1
		_, _ = bodyMethods(r)
		if rest, err := io.ReadAll(r.Body); err != nil || !bytes.Equal(rest, body) {
			t.Fatalf("the body given back differs: %d bytes (%v), want %d", len(rest), err, len(body))
		}
	})
}

// A body a framework would inflate or decode first cannot be read for
// its method here: its method is unknown, which needs the login.
func TestPlainBody(t *testing.T) {
	for _, c := range []struct {
		encoding, contentType string
		want                  bool
	}{
		{"", "application/x-www-form-urlencoded", true},
		{"identity", "application/json; charset=UTF-8", true},
		{"", `application/json; charset="utf-8"`, true},
		{"gzip", "application/x-www-form-urlencoded", false},
		{"deflate", "application/json", false},
		{"", "application/json; charset=utf-16le", false},
		{"", "application/x-www-form-urlencoded; charset=", false},
	} {
		h := http.Header{"Content-Type": {c.contentType}}
		if c.encoding != "" {
			h.Set("Content-Encoding", c.encoding)
		}
		if got := plainBody(h); got != c.want {
			t.Errorf("%q %q: %v, want %v", c.encoding, c.contentType, got, c.want)
		}
	}
}
