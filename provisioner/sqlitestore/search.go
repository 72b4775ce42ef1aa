package sqlitestore

import (
	"context"
	"fmt"
	"strings"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// SearchUsers pages through the users matching q in username order,
// after q.After, on the unique index of username_norm.
func (s *Store) SearchUsers(ctx context.Context, q provisioner.UserQuery) ([]provisioner.User, error) {
	where, args := []string{"u.username_norm > ?"}, []any{q.After}
	if q.Search != "" {
		p := q.SearchPattern()
		where = append(where, `(u.username_norm LIKE ? ESCAPE '\' OR u.email_norm LIKE ? ESCAPE '\' OR lower(u.name) LIKE ? ESCAPE '\')`)
		args = append(args, p, p, p)
	}
	if q.Connection != "" {
		where = append(where, "EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND i.connection = ?)")
		args = append(args, q.Connection)
	}
	if q.Status != "" {
		where = append(where, "u.status = ?")
		args = append(args, string(q.Status))
	}
	if q.Role != "" {
		where = append(where, "EXISTS (SELECT 1 FROM json_each(u.role_grants) g, json_each(g.value) r WHERE r.value = ?)")
		args = append(args, q.Role)
	}
	if !q.SeenBefore.IsZero() {
		where = append(where, "(u.last_login_at IS NULL OR u.last_login_at < ?)")
		args = append(args, q.SeenBefore.UnixNano())
	}
	if !q.SeenAfter.IsZero() {
		where = append(where, "u.last_login_at >= ?")
		args = append(args, q.SeenAfter.UnixNano())
	}
	limit := q.Limit
	if limit <= 0 || limit > provisioner.MaxSearchLimit {
		limit = provisioner.MaxSearchLimit
	}
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users u WHERE `+strings.Join(where, " AND ")+
		` ORDER BY u.username_norm LIMIT ?`, args...)
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
