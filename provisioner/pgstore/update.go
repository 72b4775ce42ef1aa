package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/internal/userrow"
)

// updateUser applies update (when non-nil) to a copy of cur, the user as
// read in tx, and writes back the fields an UpdateFunc may change. It
// sets updated_at to changedAt when any of them changed, and
// last_login_at to login unless that is zero. It returns the user as
// stored, or update's error as a userrow.UpdateError.
func updateUser(ctx context.Context, tx pgx.Tx, cur *provisioner.User, update provisioner.UpdateFunc, changedAt, login time.Time) (*provisioner.User, error) {
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
		updatedAt = changedAt.UTC()
	}
	if _, err := tx.Exec(ctx, `UPDATE users SET
			email = $1, email_norm = $2, email_verified = $3, name = $4, name_norm = $5,
			given_name = $6, family_name = $7, picture = $8, groups = $9, attributes = $10,
			role_grants = $11, local_attributes = $12, consents = $13, keep = $14,
			updated_at = COALESCE($15, updated_at), last_login_at = COALESCE($16, last_login_at)
		WHERE id = $17`,
		after.Email, after.EmailNorm, after.EmailVerified, after.Name, after.NameNorm, after.GivenName,
		after.FamilyName, after.Picture, after.Groups, after.Attributes, after.RoleGrants,
		after.LocalAttributes, after.Consents, after.Keep,
		updatedAt, nullTime(login), cur.ID); err != nil {
		return nil, fmt.Errorf("updating user: %w", err)
	}
	return getUser(ctx, tx, `WHERE u.id = $1`, cur.ID)
}
