package caddymodule

import (
	"bytes"
	"encoding/json"
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
// Symfony upper-cases the method first, so "post" is a POST.
func bodyMayNameMethod(r *http.Request) bool {
	if !strings.EqualFold(r.Method, http.MethodPost) || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return false
	}
	return methodBodyKinds(r.Header.Get("Content-Type")) != 0
}

// Kinds of body a _method is read from.
const (
	formBody = 1 << iota
	multipartBody
	jsonBody
)

// methodBodyKinds returns how frameworks read a body of contentType for
// its _method, as a set: Rack and PHP take the media type up to the
// first ";", "," or space, and read a form or a multipart body by it;
// Laravel reads JSON whenever the field contains "/json" or "+json".
// Go's stricter parser would refuse some of these and read no method.
func methodBodyKinds(contentType string) int {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if ct == "" {
		return formBody
	}
	mt := ct
	if i := strings.IndexAny(ct, ";, \t"); i >= 0 {
		mt = ct[:i]
	}
	kinds := 0
	switch {
	case mt == "application/x-www-form-urlencoded":
		kinds |= formBody
	case strings.HasPrefix(mt, "multipart/"):
		// Rack reads multipart/mixed and multipart/related as forms too.
		kinds |= multipartBody
	}
	if strings.Contains(ct, "/json") || strings.Contains(ct, "+json") {
		kinds |= jsonBody
	}
	return kinds
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
	if r.ContentLength > maxBodyPeek || !plainBody(r.Header) {
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyPeek+1))
	r.Body = givenBack(r.Body, data, err)
	if err != nil || len(data) > maxBodyPeek {
		return nil, false
	}
	return methodsInBody(r.Header.Get("Content-Type"), data)
}

// plainBody reports whether a body of header can be read as it comes:
// Express's body-parser inflates a gzip or deflate Content-Encoding and
// decodes a JSON or form charset such as UTF-16, which this reading does
// not, so such a body's method cannot be told.
func plainBody(h http.Header) bool {
	if ce := strings.TrimSpace(h.Get("Content-Encoding")); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	ct := strings.ToLower(h.Get("Content-Type"))
	i := strings.Index(ct, "charset=")
	if i < 0 {
		return true
	}
	cs := ct[i+len("charset="):]
	if j := strings.IndexAny(cs, ";, \t"); j >= 0 {
		cs = cs[:j]
	}
	switch strings.Trim(cs, `"'`) {
	case "utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1":
		return true
	}
	return false
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
// false for a multipart body whose methods cannot be told for sure.
func methodsInBody(contentType string, data []byte) (methods []string, known bool) {
	add := func(v string) {
		v = strings.ToUpper(strings.TrimSpace(v))
		if v != "" && len(v) <= maxMethodLen && !slices.Contains(methods, v) {
			methods = append(methods, v)
		}
	}
	kinds := methodBodyKinds(contentType)
	if kinds&formBody != 0 {
		forEachFormField(string(data), func(k, v string) {
			if isMethodField(k) {
				add(v)
			}
		})
	}
	if kinds&jsonBody != 0 {
		var fields map[string]json.RawMessage
		if json.Unmarshal(data, &fields) == nil {
			var v string
			if json.Unmarshal(fields["_method"], &v) == nil {
				add(v)
			}
		}
	}
	if kinds&multipartBody != 0 {
		found, sure := multipartMethods(contentType, data)
		if !sure {
			return methods, false
		}
		for _, v := range found {
			add(v)
		}
	}
	return methods, true
}

// multipartMethods returns the _method values of a multipart body, and
// whether that is sure. Multipart parsers differ (which boundary of
// several, a disposition other than form-data, a name parameter Go
// refuses, a bare LF before a delimiter, a Content-ID read as a name), so
// the answer is sure only when Go's strict reading accounts for every
// mention of a method field the body makes (methodMentions): each as the
// name of a form-data part it parsed. A body that mentions none, and
// spells no name in RFC 2231's encoded form (name*), names none.
func multipartMethods(contentType string, data []byte) (methods []string, sure bool) {
	mentions := methodMentions(data)
	if mentions == 0 && !bytes.Contains(bytes.ToLower(data), []byte("name*")) {
		return nil, true
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || strings.Count(strings.ToLower(contentType), "boundary=") != 1 || params["boundary"] == "" {
		return nil, false
	}
	mr := multipart.NewReader(bytes.NewReader(data), params["boundary"])
	accounted := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false
		}
		name := p.FormName()
		if !isMethodField(name) {
			continue
		}
		v, err := io.ReadAll(io.LimitReader(p, maxMethodLen+1))
		if err != nil {
			return nil, false
		}
		accounted += methodMentions([]byte(name)) + methodMentions(v)
		methods = append(methods, string(v))
	}
	return methods, accounted == mentions && (mentions > 0 || methods == nil)
}

// methodMentions counts the places in b that some framework could read
// as the start of a _method field name: "method", in any letter case,
// right after one of "_", ".", "[", "]" or a space (the spellings
// isMethodField takes), itself at the start or after a delimiter (a
// quote, "=", ";", ":", white space or a bracket). "payment_method" and
// "the method" in a file are not such places.
func methodMentions(b []byte) int {
	lower := bytes.ToLower(b)
	n := 0
	for i := 0; ; {
		j := bytes.Index(lower[i:], []byte("method"))
		if j < 0 {
			return n
		}
		at := i + j
		i = at + len("method")
		if at == 0 || !strings.ContainsRune("_.[] ", rune(lower[at-1])) {
			continue
		}
		if at == 1 || strings.ContainsRune("\"'=;: \t\r\n[]", rune(lower[at-2])) {
			n++
		}
	}
}

// forEachFormField calls f with each field of a form-encoded string, its
// name and value decoded as leniently as the frameworks decode them
// (Rack 2 also splits on ";"). It allocates only to decode.
func forEachFormField(s string, f func(k, v string)) {
	for s != "" {
		var pair string
		if i := strings.IndexAny(s, "&;"); i >= 0 {
			pair, s = s[:i], s[i+1:]
		} else {
			pair, s = s, ""
		}
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		f(formUnescape(k), formUnescape(v))
	}
}

// isMethodField reports whether a form field named name is _method to
// some framework: PHP drops leading spaces from a field's name and reads
// "." and " " (and an unclosed "[") as "_", and ends it at a NUL, so
// " _method", ".method", "[method" and "_method%00x" are _method to
// Laravel and Symfony; Rack 2 reads "[_method]" and "_method]" as it.
func isMethodField(name string) bool {
	// PHP reads a name up to a NUL.
	name, _, _ = strings.Cut(name, "\x00")
	// Rack 2 takes the first run without brackets, after leading ones,
	// when only "]" follow it: "[_method]", "_method]", "]_method".
	if rack := strings.TrimLeft(name, "[]"); rack != name || strings.ContainsAny(name, "[]") {
		if i := strings.IndexAny(rack, "[]"); i >= 0 && strings.Trim(rack[i:], "]") == "" {
			rack = rack[:i]
		}
		if rack == "_method" {
			return true
		}
	}
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
