package caddymodule

import (
	"html/template"
	"net/http"
	"net/url"
)

// Pages are small, self-contained HTML: no scripts, no external assets,
// so the strict Content-Security-Policy below holds.
var pageTemplates = template.Must(template.New("base").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;background:#f5f6f8;color:#1d2330;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem 2.5rem;max-width:26rem;width:100%}
h1{font-size:1.35rem;margin:0 0 .75rem}
p{margin:.5rem 0 1.25rem;color:#3b4252}
a.button{display:block;text-align:center;background:#2f5bea;color:#fff;text-decoration:none;padding:.7rem 1rem;border-radius:8px;margin:.5rem 0;font-weight:600}
a.button:hover{background:#2347c4}
.code{color:#8a93a6;font-size:.85rem}
</style></head>
<body><main>
<h1>{{.Title}}</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{range .Options}}<a class="button" href="{{.Href}}">Sign in with {{.Label}}</a>
{{end}}{{if .Link}}<a class="button" href="{{.Link}}">{{.LinkLabel}}</a>{{end}}
{{if .Status}}<p class="code">HTTP {{.Status}}</p>{{end}}
</main></body></html>
`))

type pageOption struct{ Href, Label string }

type pageData struct {
	Title, Message  string
	Options         []pageOption
	Link, LinkLabel string
	Status          int
}

func renderPage(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTemplates.Execute(w, d)
}

// renderError shows a clear error page; link, if set, offers a way on.
func renderError(w http.ResponseWriter, status int, title, message, link string) {
	d := pageData{Title: title, Message: message, Status: status}
	if link != "" {
		d.Link, d.LinkLabel = link, "Start again"
	}
	renderPage(w, status, d)
}

// renderMessage shows an informational page.
func renderMessage(w http.ResponseWriter, status int, title, message, link, linkLabel string) {
	renderPage(w, status, pageData{Title: title, Message: message, Link: link, LinkLabel: linkLabel})
}

// renderLogin lists the connections to sign in with.
func renderLogin(w http.ResponseWriter, prefix string, conns []*Connection, rd string) {
	q := ""
	if rd != "/" {
		q = "?rd=" + url.QueryEscape(rd)
	}
	opts := make([]pageOption, 0, len(conns))
	for _, c := range conns {
		opts = append(opts, pageOption{Href: prefix + "start/" + c.name + q, Label: c.displayName()})
	}
	renderPage(w, http.StatusOK, pageData{Title: "Sign in", Message: "Choose how to sign in.", Options: opts})
}
