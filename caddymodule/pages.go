package caddymodule

import (
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Pages are small, self-contained HTML: no scripts, no external assets,
// so the strict Content-Security-Policy below holds. Each page is its own
// file in pages/, filling the "content" block of pages/layout.html (the
// title, message, link and the shared style); all are parsed once, here.
//
//go:embed pages/*.html
var pageFiles embed.FS

var (
	loginPage   = parsePage("login.html")
	messagePage = parsePage("message.html")
	consentPage = parsePage("consent.html")
	mfaPage     = parsePage("mfa.html")
	logoutPage  = parsePage("logout.html")
)

// parsePage is the layout with one page's content.
func parsePage(name string) *template.Template {
	return template.Must(template.New(name).ParseFS(pageFiles, "pages/layout.html", "pages/"+name)).Lookup("layout")
}

type pageOption struct{ Href, Label string }

type pageData struct {
	Title, Message  string
	Options         []pageOption
	Form            *consentForm
	MFA             *mfaForm
	Logout          *logoutForm
	Link, LinkLabel string
	Status          int
	// formLeadsAnywhere leaves the page's form-action open: Chromium
	// applies form-action to every redirect the submission follows, and
	// the sign-out form's answer leads off the site (the provider's
	// end_session_endpoint) or to a page of it that sends a signed-out
	// browser to sign in, at a provider. The consent and second-factor
	// forms' answers lead to the page the sign-in is for, which may send
	// the browser on anywhere (a download handed to a file store, an
	// application's OAuth answer to a client of its own, another
	// application's sign-in at its provider).
	formLeadsAnywhere bool
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
	renderPage(w, status, pageData{Title: title, MFA: f, formLeadsAnywhere: true})
}

// logoutForm is the sign-out confirmation: a POST with the session's
// token, going on to ReturnTo (a safe path) afterwards.
type logoutForm struct {
	Action, CSRF, ReturnTo string
}

// renderLogout asks the user to confirm signing out. When the sign-out
// goes on to the provider, the form may lead there.
func (h *Handler) renderLogout(w http.ResponseWriter, s *Session, rd string) {
	f := &logoutForm{Action: h.PathPrefix + "logout", CSRF: logoutCSRF(s)}
	if safe, ok := safeReturnPath(rd); ok && rd != "" {
		f.ReturnTo = safe
	}
	msg := "Sign out of this site?"
	if s.Username != "" {
		msg = "You are signed in as " + s.Username + ". Sign out of this site?"
	}
	renderPage(w, http.StatusOK, pageData{Title: "Sign out", Message: msg, Logout: f, formLeadsAnywhere: true})
}

// consentForm is the consent (and username) form of a paused login.
type consentForm struct {
	Action, CSRF, Error string
	Provider            string
	Attributes          []provisioner.AttributeValue
	Claims              string
	AskUsername         bool
	Username            string
	// MaxUsername bounds the username field: the longest name the store
	// takes, so the field never cuts short a name the site's
	// username_pattern allows (the cut name would be taken instead).
	MaxUsername int
	// Roles are the local roles the account will hold from this
	// connection, comma-separated.
	Roles string
}

// page is the template that shows d: the page its form belongs to, else
// the sign-in choice, else a plain message.
func (d pageData) page() *template.Template {
	switch {
	case d.Form != nil:
		return consentPage
	case d.MFA != nil:
		return mfaPage
	case d.Logout != nil:
		return logoutPage
	case d.Options != nil:
		return loginPage
	}
	return messagePage
}

func renderPage(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Every page is about one browser's sign-in: never cache or share it.
	h.Set("Cache-Control", "no-store")
	formAction := " form-action 'self';"
	if d.formLeadsAnywhere {
		// form-action does not fall back to default-src: leaving it out
		// leaves the form's destination to the page's own markup.
		formAction = ""
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:;"+formAction+" frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = d.page().Execute(w, d)
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
		MaxUsername: provisioner.MaxUsernameLength,
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
	d := pageData{Title: "Allow this site to store your details?", Form: f, formLeadsAnywhere: true,
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
