package caddymodule

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Pages are small, self-contained HTML: no scripts, no external assets,
// so the strict Content-Security-Policy below holds.
var pageTemplates = template.Must(template.New("base").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;background:#f5f6f8;color:#1d2330;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem 2.5rem;max-width:26rem;width:100%;margin:2rem 1rem;box-sizing:border-box}
h1{font-size:1.35rem;margin:0 0 .75rem}
p{margin:.5rem 0 1.25rem;color:#3b4252}
a.button{display:block;text-align:center;background:#2f5bea;color:#fff;text-decoration:none;padding:.7rem 1rem;border-radius:8px;margin:.5rem 0;font-weight:600}
a.button:hover{background:#2347c4}
.code{color:#5b6475;font-size:.85rem}
dl{margin:.5rem 0 1rem;display:grid;grid-template-columns:auto 1fr;gap:.25rem .75rem}
dt{color:#5b6475}dd{margin:0;overflow-wrap:anywhere}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text]{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #c5cad6;border-radius:6px;font:inherit}
.error{color:#b3261e;font-weight:600}
button{display:block;width:100%;border:0;padding:.7rem 1rem;border-radius:8px;margin:.5rem 0;font:inherit;font-weight:600;cursor:pointer}
button.allow{background:#2f5bea;color:#fff}
img{display:block;margin:0 auto}ol.codes{columns:2;font-size:1.05rem}button.decline{background:#e6e8ee;color:#1d2330}
</style></head>
<body><main>
<h1>{{.Title}}</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{with .Form}}<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{if and .Error (not .AskUsername)}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if or .Attributes .Roles}}<dl>{{range .Attributes}}<dt>{{.Name}}</dt><dd>{{.Value}}</dd>{{end}}{{with .Roles}}<dt>Roles</dt><dd>{{.}}</dd>{{end}}</dl>{{end}}
{{if .Claims}}<p class="code">The sign-in record also keeps these claims from {{.Provider}}: {{.Claims}}.</p>{{end}}
{{if .AskUsername}}<label for="username">Username</label>
{{if .Error}}<p class="error" id="username-error" role="alert">{{.Error}}</p>{{end}}
<input type="text" id="username" name="username" value="{{.Username}}" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="64"{{if .Error}} aria-invalid="true" aria-describedby="username-error"{{end}}>
<p class="code">Lower-case letters, digits, '.', '_' and '-'.</p>{{end}}
<button class="allow" type="submit" name="action" value="allow">{{if .AskUsername}}Create account{{else}}Allow{{end}}</button>
<button class="decline" type="submit" name="action" value="decline" formnovalidate>Decline</button>
</form>{{end}}
{{with .Logout}}<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{if .ReturnTo}}<input type="hidden" name="rd" value="{{.ReturnTo}}">{{end}}
<button class="allow" type="submit">Sign out</button>
</form>{{end}}
{{with .MFA}}{{if .Codes}}<p>Your second factor is on. Keep these recovery codes somewhere safe: each signs you in once if you lose your authenticator app. They are shown only now.</p>
<ol class="codes">{{range .Codes}}<li><code>{{.}}</code></li>{{end}}</ol>
<a class="button" href="{{.Continue}}">Continue</a>
{{else}}<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="action" value="{{if .Enrol}}enrol{{else}}verify{{end}}">
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if .Enrol}}<p>Scan this code with an authenticator app, then enter the 6-digit code it shows.</p>
<img src="{{.QR}}" alt="QR code for your authenticator app" width="200" height="200">
<p class="code">Or enter this key in the app: <code id="secret">{{.Secret}}</code></p>{{else}}<p>Enter the 6-digit code your authenticator app shows for this site. Lost the app? Enter one of your recovery codes instead.</p>{{end}}
<label for="code">{{if .Enrol}}Code from the app{{else}}Code from your authenticator app, or a recovery code{{end}}</label>
<input type="text" id="code" name="code" autocomplete="one-time-code" autocapitalize="none" spellcheck="false" required maxlength="32" autofocus{{if .Enrol}} inputmode="numeric"{{end}}{{if .Error}} aria-invalid="true"{{end}}>
<button class="allow" type="submit">{{if .Enrol}}Turn on the second factor{{else}}Verify{{end}}</button>
</form>{{end}}{{end}}
{{range .Options}}<a class="button" href="{{.Href}}">Sign in with {{.Label}}</a>
{{end}}{{if .Link}}<a class="button" href="{{.Link}}">{{.LinkLabel}}</a>{{end}}
{{if .Status}}<p class="code">HTTP {{.Status}}</p>{{end}}
</main></body></html>
`))

type pageOption struct{ Href, Label string }

type pageData struct {
	Title, Message  string
	Options         []pageOption
	Form            *consentForm
	MFA             *mfaForm
	Logout          *logoutForm
	Link, LinkLabel string
	Status          int
}

// mfaForm is the second-factor page: enrolment, verification, or the
// recovery codes shown once after enrolment.
type mfaForm struct {
	Action, CSRF, Error string
	Enrol               bool
	QR                  template.URL // a data: URI we drew ourselves
	Secret              string
	Codes               []string
	Continue            string
}

// renderMFA shows the second-factor page.
func (h *Handler) renderMFA(w http.ResponseWriter, status int, f *mfaForm) {
	title := "Second factor"
	switch {
	case f.Codes != nil:
		title = "Save your recovery codes"
	case f.Enrol:
		title = "Set up a second factor"
	}
	renderPage(w, status, pageData{Title: title, MFA: f})
}

// logoutForm is the sign-out confirmation: a POST with the session's
// token, going on to ReturnTo (a safe path) afterwards.
type logoutForm struct {
	Action, CSRF, ReturnTo string
}

// renderLogout asks the user to confirm signing out.
func (h *Handler) renderLogout(w http.ResponseWriter, s *Session, rd string) {
	f := &logoutForm{Action: h.PathPrefix + "logout", CSRF: logoutCSRF(s)}
	if safe, ok := safeReturnPath(rd); ok && rd != "" {
		f.ReturnTo = safe
	}
	msg := "Sign out of this site?"
	if s.Username != "" {
		msg = "You are signed in as " + s.Username + ". Sign out of this site?"
	}
	renderPage(w, http.StatusOK, pageData{Title: "Sign out", Message: msg, Logout: f})
}

// consentForm is the consent (and username) form of a paused login.
type consentForm struct {
	Action, CSRF, Error string
	Provider            string
	Attributes          []provisioner.AttributeValue
	Claims              string
	AskUsername         bool
	Username            string
	// Roles are the local roles the account will hold from this
	// connection, comma-separated.
	Roles string
}

func renderPage(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Every page is about one browser's sign-in: never cache or share it.
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'")
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

// retryAfterSeconds is a wait in whole seconds, rounded up so that a
// client that waits exactly that long is let in: at least 1.
func retryAfterSeconds(d time.Duration) int64 {
	n := int64((d + time.Second - 1) / time.Second)
	return max(n, 1)
}

// waitText says how long to wait as Retry-After counts it, in words
// ("1 second", "5 seconds").
func waitText(d time.Duration) string {
	n := retryAfterSeconds(d)
	if n == 1 {
		return "1 second"
	}
	return strconv.FormatInt(n, 10) + " seconds"
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

// consentLabels are the names a consent page shows for attributes.
var consentLabels = map[string]string{
	provisioner.AttrEmail: "Email", provisioner.AttrEmailVerified: "Email verified",
	provisioner.AttrName: "Name", provisioner.AttrGivenName: "Given name",
	provisioner.AttrFamilyName: "Family name", provisioner.AttrPicture: "Picture",
	provisioner.AttrGroups: "Groups",
}

// renderConsent shows the consent or username page of a paused login:
// exactly the attributes that will be stored, and the claims the
// identity record keeps.
func (h *Handler) renderConsent(w http.ResponseWriter, status int, conn *Connection, p *pendingLogin, errMsg string) {
	f := &consentForm{
		Action: h.PathPrefix + "consent", CSRF: p.CSRF, Error: errMsg, Provider: conn.displayName(),
		AskUsername: p.Outcome == string(provisioner.OutcomeNeedsUsername), Username: p.Username,
	}
	var claims []string
	for _, a := range p.Attributes {
		if name, ok := strings.CutPrefix(a.Name, "claims."); ok {
			claims = append(claims, name)
			continue
		}
		label := consentLabels[a.Name]
		if label == "" {
			label = a.Name
		}
		value := a.Value
		if a.Name == provisioner.AttrEmailVerified {
			value = map[string]string{"true": "Yes", "false": "No"}[value]
		}
		f.Attributes = append(f.Attributes, provisioner.AttributeValue{Name: label, Value: value})
	}
	f.Claims = strings.Join(claims, ", ")
	f.Roles = strings.Join(p.Roles, ", ")
	d := pageData{Title: "Allow this site to store your details?", Form: f,
		Message: "You signed in with " + conn.displayName() + ". To create or update your account, this site stores:"}
	if f.AskUsername {
		d.Title = "Choose your username"
		d.Message = "You signed in with " + conn.displayName() + ". Choose the username for your account on this site. It also stores:"
	}
	if len(f.Attributes) == 0 && f.Claims == "" && f.Roles == "" {
		d.Message = "You signed in with " + conn.displayName() + ". This site will keep a record that you signed in."
	}
	renderPage(w, status, d)
}
