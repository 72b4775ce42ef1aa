package sqlitestore

import (
	"context"
	"fmt"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/internal/userrow"
)

// SearchUsers pages through the users matching q in username order,
// after q.After, on the unique index of username_norm.
func (s *Store) SearchUsers(ctx context.Context, q provisioner.UserQuery) ([]provisioner.User, error) {
	query, args := userrow.SearchQuery(q, userColumns, sqliteSearch)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: searching users: %w", err)
	}
	defer rows.Close()
	users := []provisioner.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: searching users: %w", err)
		}
		users = append(users, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: searching users: %w", err)
	}
	return users, nil
}

// sqliteSearch spells a directory search for SQLite.
var sqliteSearch = userrow.SearchDialect{
	// SQLite would walk the unique index on username_norm and read each
	// row to test the search text; users_search_cols has the tested
	// columns in the same order, so rows are read only for matches.
	SearchFrom:  "users u INDEXED BY users_search_cols",
	Placeholder: func(int) string { return "?" },
	// Times are stored as Unix nanoseconds, which end in 1677 and 2262:
	// a bound beyond them ("seen before 9999-12-31") is the nearest of
	// them, which no stored time passes, rather than an overflow that
	// wraps to the other end.
	Time: func(t time.Time) any {
		switch {
		case t.Before(minTime):
			t = minTime
		case t.After(maxTime):
			t = maxTime
		}
		return t.UnixNano()
	},
	HasRole: func(p string) string {
		return "EXISTS (SELECT 1 FROM json_each(u.role_grants) g, json_each(g.value) r WHERE r.value = " + p + ")"
	},
}

// CountUsers counts the users by status, for the users-by-status metric.
func (s *Store) CountUsers(ctx context.Context) (map[provisioner.Status]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, count(*) FROM users GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: counting users: %w", err)
	}
	defer rows.Close()
	counts := map[provisioner.Status]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("sqlite store: counting users: %w", err)
		}
		counts[provisioner.Status(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: counting users: %w", err)
	}
	return counts, nil
}
