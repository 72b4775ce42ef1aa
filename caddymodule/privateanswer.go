package caddymodule

import (
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// privateAnswer is the writer of an answer that carries a session
// cookie the module set on the application's own response (touch). When
// the answer's header goes out, whatever the handlers after jit_auth (or
// a deferred header operation before it, see privateBelow) put there,
// its Cache-Control says private, so that no shared cache stores the cookie for others
// (RFC 9111: Set-Cookie alone does not stop a cache from storing an
// answer the application marked public).
type privateAnswer struct {
	*caddyhttp.ResponseWriterWrapper
	wroteHeader bool
}

// privateBelow makes the answer w writes private, and returns the writer
// the request goes on with. A Caddy writer wrapper w stands on may still
// change the header when it goes out: header, which Caddy orders before
// jit_auth, applies its deferred operations (">Cache-Control public", or
// a block that also deletes a field) on the way down, after a
// privateAnswer over w would have rewritten it. So the privateAnswer
// goes under the lowest of the wrappers that embed Caddy's
// ResponseWriterWrapper (which also covers the answer of handle_errors,
// written to the server's writer), and over w only when w is none.
func privateBelow(w http.ResponseWriter) http.ResponseWriter {
	var lowest *caddyhttp.ResponseWriterWrapper
	for cur := w; ; {
		rww := embeddedWrapper(cur)
		if rww == nil || rww.ResponseWriter == nil {
			break
		}
		lowest, cur = rww, rww.ResponseWriter
	}
	if lowest == nil {
		return newPrivateAnswer(w)
	}
	lowest.ResponseWriter = newPrivateAnswer(lowest.ResponseWriter)
	return w
}

var (
	wrapperType    = reflect.TypeFor[caddyhttp.ResponseWriterWrapper]()
	wrapperPtrType = reflect.TypeFor[*caddyhttp.ResponseWriterWrapper]()
)

// embeddedWrapper is the caddyhttp.ResponseWriterWrapper w is or embeds
// (by pointer or by value, as Caddy's own writers do), or nil.
func embeddedWrapper(w http.ResponseWriter) *caddyhttp.ResponseWriterWrapper {
	if rww, ok := w.(*caddyhttp.ResponseWriterWrapper); ok {
		return rww
	}
	v := reflect.ValueOf(w)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	v = v.Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.Anonymous || !f.IsExported() {
			continue
		}
		switch f.Type {
		case wrapperType:
			return v.Field(i).Addr().Interface().(*caddyhttp.ResponseWriterWrapper)
		case wrapperPtrType:
			return v.Field(i).Interface().(*caddyhttp.ResponseWriterWrapper)
		}
	}
	return nil
}

func newPrivateAnswer(w http.ResponseWriter) *privateAnswer {
	return &privateAnswer{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
}

func (p *privateAnswer) WriteHeader(status int) {
	if !p.wroteHeader && (status < 100 || status > 199) {
		p.wroteHeader = true
		h := p.Header()
		if v := privateCacheControl(h.Values("Cache-Control")); v != "" {
			h.Set("Cache-Control", v)
		}
		dropTargetedCacheControl(h)
	}
	p.ResponseWriterWrapper.WriteHeader(status)
}

func (p *privateAnswer) Write(b []byte) (int, error) {
	if !p.wroteHeader {
		p.WriteHeader(http.StatusOK)
	}
	return p.ResponseWriterWrapper.Write(b)
}

// ReadFrom and FlushError go through WriteHeader first: the wrapped
// writer's own would send the header without it.
func (p *privateAnswer) ReadFrom(r io.Reader) (int64, error) {
	if !p.wroteHeader {
		p.WriteHeader(http.StatusOK)
	}
	return p.ResponseWriterWrapper.ReadFrom(r)
}

func (p *privateAnswer) FlushError() error {
	if !p.wroteHeader {
		p.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(p.ResponseWriterWrapper.ResponseWriter).Flush()
}

// dropTargetedCacheControl removes from h the cache fields a CDN reads
// instead of Cache-Control: CDN-Cache-Control (RFC 9213) and those named
// for one CDN (Cloudflare-CDN-Cache-Control, Akamai-Cache-Control),
// Surrogate-Control (Fastly, Varnish) and Edge-Control (Akamai). One that
// lets the CDN store the answer would have it keep the session cookie
// for others, however private Cache-Control says it is; without them the
// CDN reads Cache-Control.
func dropTargetedCacheControl(h http.Header) {
	for k := range h {
		lk := strings.ToLower(k)
		if strings.HasSuffix(lk, "-cache-control") || lk == "surrogate-control" || lk == "edge-control" {
			delete(h, k)
		}
	}
}

// privateCacheControl is the Cache-Control an answer with the session
// cookie goes out with, given the application's lines of it: "" to keep
// them as they are (they already say no-store or private, which keep
// the answer out of shared caches), else the application's directives
// without those that let a shared cache store it (public, s-maxage, a
// private that names only some fields), after private. Directive names are case-insensitive; a quoted value
// containing a comma is split as any list here, which can only drop
// a directive, never keep public.
func privateCacheControl(lines []string) string {
	var kept []string
	for _, line := range lines {
		for _, d := range strings.Split(line, ",") {
			d = strings.TrimSpace(d)
			if d == "" {
				continue
			}
			name, _, qualified := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store":
				return ""
			case "private":
				if !qualified {
					return ""
				}
				// private="X-Foo" keeps only the fields it names out
				// of shared caches, not the session cookie.
				continue
			case "public", "s-maxage":
				continue
			}
			kept = append(kept, d)
		}
	}
	return strings.Join(append([]string{"private"}, kept...), ", ")
}

var _ http.ResponseWriter = (*privateAnswer)(nil)
