package pgstore

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
	query, args := userrow.SearchQuery(q, userColumns, pgSearch)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: searching users: %w", err)
	}
	defer rows.Close()
	users := []provisioner.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres store: searching users: %w", err)
		}
		users = append(users, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: searching users: %w", err)
	}
	return users, nil
}

// pgSearch spells a directory search for PostgreSQL.
var pgSearch = userrow.SearchDialect{
	Placeholder: func(n int) string { return fmt.Sprintf("$%d", n) },
	Time:        func(t time.Time) any { return t },
	// Lax mode: a grants value that is not an object of lists (null)
	// matches nothing instead of failing the query.
	HasRole: func(p string) string {
		return "jsonb_path_exists(u.role_grants, '$.*[*] ? (@ == $r)', jsonb_build_object('r', " + p + "::text))"
	},
	// Instances share the database and are upgraded one by one.
	NameFallback: true,
}

// CountUsers counts the users by status, for the users-by-status metric.
func (s *Store) CountUsers(ctx context.Context) (map[provisioner.Status]int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM users GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("postgres store: counting users: %w", err)
	}
	defer rows.Close()
	counts := map[provisioner.Status]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("postgres store: counting users: %w", err)
		}
		counts[provisioner.Status(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: counting users: %w", err)
	}
	return counts, nil
}
