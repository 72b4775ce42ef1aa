package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// A POST's body may name the method too: HTML forms cannot send DELETE
// or PUT, so Rails (Rack::MethodOverride), Laravel and Symfony take a
// POST for the method its _method form field names (Laravel also reads
// a JSON body's "_method"). A Rails "Delete" button is such a form, so
// "@danger method DELETE" would let every one of them pass. Reading a
// body costs a buffer and a wait for the client, so it is read only when
// a method it could name would change the answer (formReadings), and
// only up to maxBodyPeek: a body the upstream could find another method
// in after that, or one that could not be read, asks for a login.

// maxBodyPeek bounds how much of a body is read for its _method.
const maxBodyPeek = 64 << 10

// maxMethodLen bounds a method name read from anywhere: no method is
// longer, and a longer value is not one.
const maxMethodLen = 20

// formOverridable are the methods a body's _method is tried as before
// the body is read: those the frameworks know (Rack's list, Symfony's
// and WebDAV's). A body that names another is tried for that one too,
// once read.
var formOverridable = []string{
	"GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "PURGE", "LINK", "UNLINK",
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK",
}

// bodyMayNameMethod reports whether r is a POST with a body of a kind
// that a framework reads a _method from: a form (Rack also takes a POST
// without a Content-Type, or with any multipart one, for one) or JSON.
func bodyMayNameMethod(r *http.Request) bool {
	if r.Method != http.MethodPost || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return false
	}
	_, ok := methodBodyKind(r.Header.Get("Content-Type"))
	return ok
}

// methodBodyKind returns how a body of contentType is read for its
// _method ("form", "multipart" with its boundary, or "json"), and false
// for a body no framework reads one from.
func methodBodyKind(contentType string) (kind string, ok bool) {
	if strings.TrimSpace(contentType) == "" {
		return "form", true
	}
	mt, params, err := mime.ParseMediaType(contentType)
	switch {
	case err != nil:
		return "", false
	case mt == "application/x-www-form-urlencoded":
		return "form", true
	case strings.HasPrefix(mt, "multipart/"):
		// Rack reads multipart/mixed and multipart/related as forms too.
		return "multipart " + params["boundary"], true
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return "json", true
	}
	return "", false
}

// formReadings tries r as each method its body may name (see above),
// with each of rs's hosts and paths, when rs.form says there is such a
// body. It reads the body only when one of formOverridable, or a
// method already named elsewhere, would make try say true; and then
// says true when the body names such a method or cannot be read whole.
func (rs requestReadings) formReadings(r *http.Request, try func(*http.Request) (bool, error)) (bool, error) {
	if !rs.form {
		return false, nil
	}
	could := false
	for _, m := range formOverridable {
		if m == r.Method || slices.Contains(rs.methods, m) {
			continue // tried already
		}
		ok, err := rs.eachWithMethods(r, []string{m}, try)
		if err != nil {
			return false, err
		}
		if ok {
			could = true
			break
		}
	}
	if !could {
		return false, nil
	}
	named, known := bodyMethods(r)
	if !known {
		return true, nil
	}
	var other []string
	for _, m := range named {
		if m != r.Method && !slices.Contains(rs.methods, m) {
			other = append(other, m)
		}
	}
	if other == nil {
		return false, nil
	}
	return rs.eachWithMethods(r, other, try)
}

// bodyMethodsVar keeps what bodyMethods read on the request, so the
// site's cleaning step and a jit_auth handler read a body once.
const bodyMethodsVar = "jit_auth.body_methods"

type readBodyMethods struct {
	methods []string
	known   bool
}

// bodyMethods returns the methods r's body names in a _method field,
// upper-cased, and whether the body could be read whole (known). The
// body is given back to r unchanged, so the upstream reads all of it.
func bodyMethods(r *http.Request) (methods []string, known bool) {
	if done, ok := caddyhttp.GetVar(r.Context(), bodyMethodsVar).(readBodyMethods); ok {
		return done.methods, done.known
	}
	methods, known = peekBodyMethods(r)
	caddyhttp.SetVar(r.Context(), bodyMethodsVar, readBodyMethods{methods, known})
	return methods, known
}

func peekBodyMethods(r *http.Request) ([]string, bool) {
	if r.ContentLength > maxBodyPeek {
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyPeek+1))
	r.Body = givenBack(r.Body, data, err)
	if err != nil || len(data) > maxBodyPeek {
		return nil, false
	}
	return methodsInBody(r.Header.Get("Content-Type"), data)
}

// givenBack is body again after data was read from it: data first,
// then the rest of body, or the error that reading it met.
func givenBack(body io.ReadCloser, data []byte, err error) io.ReadCloser {
	var rest io.Reader = body
	if err != nil {
		rest = failingReader{err}
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(data), rest), body}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// methodsInBody returns the upper-cased values of the _method fields in
// a whole body of contentType, as the frameworks read them; known is
// false for a multipart body that does not parse (what the upstream
// makes of it cannot be told).
func methodsInBody(contentType string, data []byte) (methods []string, known bool) {
	add := func(v string) {
		v = strings.ToUpper(strings.TrimSpace(v))
		if v != "" && len(v) <= maxMethodLen && !slices.Contains(methods, v) {
			methods = append(methods, v)
		}
	}
	kind, ok := methodBodyKind(contentType)
	switch {
	case !ok:
		return nil, true
	case kind == "form":
		// Rack 2 also splits on ";".
		for _, pair := range strings.FieldsFunc(string(data), func(c rune) bool { return c == '&' || c == ';' }) {
			k, v, _ := strings.Cut(pair, "=")
			if isMethodField(formUnescape(k)) {
				add(formUnescape(v))
			}
		}
	case kind == "json":
		var fields map[string]json.RawMessage
		if json.Unmarshal(data, &fields) == nil {
			var v string
			if json.Unmarshal(fields["_method"], &v) == nil {
				add(v)
			}
		}
	default:
		mr := multipart.NewReader(bytes.NewReader(data), strings.TrimPrefix(kind, "multipart "))
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return methods, false
			}
			if isMethodField(p.FormName()) {
				v, _ := io.ReadAll(io.LimitReader(p, maxMethodLen+1))
				add(string(v))
			}
		}
	}
	return methods, true
}

// isMethodField reports whether a form field named name is _method to
// some framework: PHP drops leading spaces from a field's name and reads
// "." and " " (and an unclosed "[") as "_", so " _method", ".method" and
// "[method" are _method to Laravel and Symfony.
func isMethodField(name string) bool {
	name = strings.TrimLeft(name, " ")
	if len(name) != len("_method") {
		return false
	}
	switch name[0] {
	case '_', '.', ' ', '[':
		return name[1:] == "method"
	}
	return false
}

// formUnescape decodes a form-encoded string as leniently as the
// frameworks do: a malformed escape stays as it is.
func formUnescape(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
