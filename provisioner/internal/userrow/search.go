package userrow

import (
	"strings"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// SearchDialect is how one SQL store spells the parts of a directory
// search that differ between databases.
type SearchDialect struct {
	// Placeholder names the n-th argument (1-based): "?" or "$n".
	Placeholder func(n int) string
	// Time is a time as the store keeps it in last_login_at and
	// status_changed_at.
	Time func(time.Time) any
	// HasRole is the condition that u holds the role in placeholder p.
	HasRole func(p string) string
	// SearchFrom, if set, replaces "users u" in a query with search
	// text (a store's index hint).
	SearchFrom string
	// NameFallback also matches lower(u.name): a store that several
	// instances share finds a name that an instance of an older build
	// wrote without name_norm during a rolling upgrade.
	NameFallback bool
}

// SearchQuery returns the SELECT of the users matching q, in username
// order after q.After and bounded to the page, with its arguments.
// columns is the store's user column list, over the alias u.
func SearchQuery(q provisioner.UserQuery, columns string, d SearchDialect) (string, []any) {
	var args []any
	arg := func(v any) string { args = append(args, v); return d.Placeholder(len(args)) }
	where := []string{"u.username_norm > " + arg(q.After)}
	if q.Search != "" {
		// One argument per use: "?" placeholders are positional.
		// Each column is matched with the text normalised as it is.
		p := q.SearchPattern()
		cond := `u.username_norm LIKE ` + arg(q.UsernamePattern()) + ` ESCAPE '\' OR u.email_norm LIKE ` + arg(p) + ` ESCAPE '\' OR u.name_norm LIKE ` + arg(q.NamePattern()) + ` ESCAPE '\'`
		if d.NameFallback {
			cond += ` OR lower(u.name) LIKE ` + arg(p) + ` ESCAPE '\'`
		}
		where = append(where, "("+cond+")")
	}
	if q.Connection != "" {
		where = append(where, "EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND i.connection = "+arg(q.Connection)+")")
	}
	if q.Status != "" {
		where = append(where, "u.status = "+arg(string(q.Status)))
	}
	if q.Role != "" {
		where = append(where, d.HasRole(arg(q.Role)))
	}
	if !q.SeenBefore.IsZero() {
		where = append(where, "(u.last_login_at IS NULL OR u.last_login_at < "+arg(d.Time(q.SeenBefore))+")")
	}
	if !q.NotEnabledSince.IsZero() {
		where = append(where, "(u.status <> "+arg(string(provisioner.StatusActive))+
			" OR u.status_changed_at IS NULL OR u.status_changed_at < "+arg(d.Time(q.NotEnabledSince))+")")
	}
	if !q.SeenAfter.IsZero() {
		where = append(where, "u.last_login_at >= "+arg(d.Time(q.SeenAfter)))
	}
	limit := q.Limit
	if limit <= 0 || limit > provisioner.MaxSearchLimit {
		limit = provisioner.MaxSearchLimit
	}
	lim := arg(limit)
	from := "users u"
	if q.Search != "" && d.SearchFrom != "" {
		from = d.SearchFrom
	}
	return `SELECT ` + columns + ` FROM ` + from + ` WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY u.username_norm LIMIT ` + lim, args
}
