// Package legacyapp is the stand-in "legacy application" of the demo, the
// end-to-end tests and the benchmarks: it has no login code of its own and
// trusts the identity headers that jit_auth sets on proxied requests.
//
// It must only ever be reachable through the proxy (listen on loopback):
// anyone who can reach it directly can claim any identity.
package legacyapp

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
)

// The identity headers jit_auth sends upstream by default.
const (
	HeaderUser   = "Remote-User"
	HeaderEmail  = "Remote-Email"
	HeaderName   = "Remote-Name"
	HeaderGroups = "Remote-Groups"
)

// LogoutPath is jit_auth's logout endpoint (default path prefix).
const LogoutPath = "/.jitauth/logout"

// Identity is what the app learned from the request headers.
type Identity struct {
	User   string   `json:"user"`
	Email  string   `json:"email"`
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
}

// FromRequest reads the identity headers. Groups is comma-separated.
func FromRequest(r *http.Request) Identity {
	id := Identity{
		User:   r.Header.Get(HeaderUser),
		Email:  r.Header.Get(HeaderEmail),
		Name:   r.Header.Get(HeaderName),
		Groups: []string{},
	}
	for _, g := range strings.Split(r.Header.Get(HeaderGroups), ",") {
		if g = strings.TrimSpace(g); g != "" {
			id.Groups = append(id.Groups, g)
		}
	}
	return id
}

// Handler serves the app:
//
//	GET /api/whoami  the identity as JSON (for tests and benchmarks)
//	GET anything else  an HTML page showing the identity headers received
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(FromRequest(r))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		page.Execute(w, pageData{
			Path:       r.URL.Path,
			Headers:    headersOf(r, HeaderUser, HeaderEmail, HeaderName, HeaderGroups),
			User:       r.Header.Get(HeaderUser),
			LogoutPath: LogoutPath,
		})
	})
	return mux
}

// header is one identity header as received. jit_auth always sets its
// headers, empty when it knows no value (a user without groups), so
// "sent but empty" and "not sent" are different things worth telling apart.
type header struct {
	Name, Value string
	Sent        bool
}

func headersOf(r *http.Request, names ...string) []header {
	hs := make([]header, 0, len(names))
	for _, n := range names {
		_, sent := r.Header[http.CanonicalHeaderKey(n)]
		hs = append(hs, header{Name: n, Value: r.Header.Get(n), Sent: sent})
	}
	return hs
}

type pageData struct {
	Path       string
	Headers    []header
	User       string
	LogoutPath string
}

// html/template escapes every value.
var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Legacy app</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
code{background:#f3f3f3;padding:0 .2rem}.none{color:#888}</style></head>
<body>
<h1>Legacy app</h1>
<p>This application has no login code. It trusts the identity headers the proxy sets.</p>
{{if .User}}<p>Hello, <strong id="user">{{.User}}</strong>!</p>{{else}}<p class="none">No identity headers: this request did not come through jit_auth.</p>{{end}}
<table>
<tr><th>Header</th><th>Value</th></tr>
{{range .Headers}}<tr><td><code>{{.Name}}</code></td><td>{{if .Value}}{{.Value}}{{else if .Sent}}<span class="none">(sent, empty)</span>{{else}}<span class="none">(not sent)</span>{{end}}</td></tr>
{{end}}</table>
<p>Path: <code>{{.Path}}</code></p>
<p><a href="{{.LogoutPath}}">Sign out</a> (jit_auth asks you to confirm)</p>
</body>
</html>
`))
