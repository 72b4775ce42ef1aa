package pgstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// SearchUsers pages through the users matching q in username order,
// after q.After, on the unique index of username_norm.
func (s *Store) SearchUsers(ctx context.Context, q provisioner.UserQuery) ([]provisioner.User, error) {
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	where := []string{"u.username_norm > " + arg(q.After)}
	if q.Search != "" {
		p := arg(q.SearchPattern())
		where = append(where, `(u.username_norm LIKE `+p+` ESCAPE '\' OR u.email_norm LIKE `+p+` ESCAPE '\' OR lower(u.name) LIKE `+p+` ESCAPE '\')`)
	}
	if q.Connection != "" {
		where = append(where, "EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND i.connection = "+arg(q.Connection)+")")
	}
	if q.Status != "" {
		where = append(where, "u.status = "+arg(string(q.Status)))
	}
	if q.Role != "" {
		// Lax mode: a grants value that is not an object of lists (null)
		// matches nothing instead of failing the query.
		where = append(where, "jsonb_path_exists(u.role_grants, '$.*[*] ? (@ == $r)', jsonb_build_object('r', "+arg(q.Role)+"::text))")
	}
	if !q.SeenBefore.IsZero() {
		where = append(where, "(u.last_login_at IS NULL OR u.last_login_at < "+arg(q.SeenBefore)+")")
	}
	if !q.SeenAfter.IsZero() {
		where = append(where, "u.last_login_at >= "+arg(q.SeenAfter))
	}
	limit := q.Limit
	if limit <= 0 || limit > provisioner.MaxSearchLimit {
		limit = provisioner.MaxSearchLimit
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	lim := arg(limit)
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users u WHERE `+strings.Join(where, " AND ")+
		` ORDER BY u.username_norm LIMIT `+lim, args...)
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
