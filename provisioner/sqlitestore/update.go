package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/internal/userrow"
)

// updateUser applies update (when non-nil) to a copy of cur, the user as
// read in tx, and writes back the fields an UpdateFunc may change. It
// sets updated_at to changedAt when any of them changed, and
// last_login_at to login unless that is zero. It returns the user as
// stored, or update's error as a userrow.UpdateError.
func updateUser(ctx context.Context, tx *sql.Tx, cur *provisioner.User, update provisioner.UpdateFunc, changedAt, login time.Time) (*provisioner.User, error) {
	before, err := userrow.Columns(cur)
	if err != nil {
		return nil, err
	}
	after := before
	if update != nil {
		u := userrow.Clone(cur)
		if err := update(u); err != nil {
			return nil, userrow.UpdateError{Err: err}
		}
		if after, err = userrow.Columns(u); err != nil {
			return nil, err
		}
	}
	changed := after != before
	if !changed && login.IsZero() {
		return cur, nil
	}
	var updatedAt any
	if changed {
		if err := checkTime(changedAt); err != nil {
			return nil, err
		}
		updatedAt = changedAt.UnixNano()
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET
			email = ?, email_norm = ?, email_verified = ?, name = ?, name_norm = ?, given_name = ?,
			family_name = ?, picture = ?, groups = ?, attributes = ?, role_grants = ?,
			local_attributes = ?, consents = ?, keep = ?,
			updated_at = COALESCE(?, updated_at), last_login_at = COALESCE(?, last_login_at)
		WHERE id = ?`,
		after.Email, after.EmailNorm, after.EmailVerified, after.Name, after.NameNorm, after.GivenName,
		after.FamilyName, after.Picture, after.Groups, after.Attributes, after.RoleGrants,
		after.LocalAttributes, after.Consents, after.Keep,
		updatedAt, nullTime(login), cur.ID); err != nil {
		return nil, fmt.Errorf("updating user: %w", err)
	}
	return getUser(ctx, tx, `WHERE u.id = ?`, cur.ID)
}
