package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// editable holds the stored form of the user columns an UpdateFunc may
// change. The jsonb columns are given as JSON text, or nil (NULL) when
// empty; JSON
// objects are encoded with sorted keys, so two values are equal exactly
// when the users agree on these fields.
type editable struct {
	email, emailNorm                     string
	emailVerified                        bool
	name, givenName, familyName, picture string
	groups, attributes                   any
	roleGrants, localAttributes          any
	consents                             any
}

func editableColumns(u *provisioner.User) (editable, error) {
	c := editable{
		email:         u.Email,
		emailNorm:     provisioner.NormalizeEmail(u.Email),
		emailVerified: u.EmailVerified,
		name:          u.Name,
		givenName:     u.GivenName,
		familyName:    u.FamilyName,
		picture:       u.Picture,
	}
	var err error
	if c.groups, err = encodeJSON("groups", len(u.Groups), u.Groups); err != nil {
		return editable{}, err
	}
	if c.attributes, err = encodeJSON("attributes", len(u.Attributes), u.Attributes); err != nil {
		return editable{}, err
	}
	if c.roleGrants, err = encodeJSON("role grants", len(u.RoleGrants), u.RoleGrants); err != nil {
		return editable{}, err
	}
	if c.localAttributes, err = encodeJSON("local attributes", len(u.LocalAttributes), u.LocalAttributes); err != nil {
		return editable{}, err
	}
	consents := maps.Clone(u.Consents)
	consentsInUTC(consents)
	if c.consents, err = encodeJSON("consents", len(consents), consents); err != nil {
		return editable{}, err
	}
	return c, nil
}

// encodeJSON returns v as JSON text, or nil for an empty value (n is
// its length), which the store keeps as NULL.
func encodeJSON(what string, n int, v any) (any, error) {
	if n == 0 {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", what, err)
	}
	return string(b), nil
}

// consentsInUTC puts the consent times of c in UTC, in place.
func consentsInUTC(c map[string]provisioner.Consent) {
	for k, v := range c {
		v.At = v.At.UTC()
		c[k] = v
	}
}

// updateUser applies update (when non-nil) to a copy of cur, the user as
// read in tx, and writes back the fields an UpdateFunc may change. It
// sets updated_at to changedAt when any of them changed, and
// last_login_at to login unless that is zero. It returns the user as
// stored, or update's error as an updateError.
func updateUser(ctx context.Context, tx pgx.Tx, cur *provisioner.User, update provisioner.UpdateFunc, changedAt, login time.Time) (*provisioner.User, error) {
	before, err := editableColumns(cur)
	if err != nil {
		return nil, err
	}
	after := before
	if update != nil {
		u := cloneUser(cur)
		if err := update(u); err != nil {
			return nil, updateError{err}
		}
		if after, err = editableColumns(u); err != nil {
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
			email = $1, email_norm = $2, email_verified = $3, name = $4, given_name = $5,
			family_name = $6, picture = $7, groups = $8, attributes = $9, role_grants = $10,
			local_attributes = $11, consents = $12,
			updated_at = COALESCE($13, updated_at), last_login_at = COALESCE($14, last_login_at)
		WHERE id = $15`,
		after.email, after.emailNorm, after.emailVerified, after.name, after.givenName,
		after.familyName, after.picture, after.groups, after.attributes, after.roleGrants,
		after.localAttributes, after.consents,
		updatedAt, nullTime(login), cur.ID); err != nil {
		return nil, fmt.Errorf("updating user: %w", err)
	}
	return getUser(ctx, tx, `WHERE u.id = $1`, cur.ID)
}

// cloneUser returns a deep copy of u, so an UpdateFunc cannot reach the
// store's own values.
func cloneUser(u *provisioner.User) *provisioner.User {
	c := *u
	c.Groups = slices.Clone(u.Groups)
	c.Attributes = maps.Clone(u.Attributes)
	c.LocalAttributes = slices.Clone(u.LocalAttributes)
	if u.RoleGrants != nil {
		c.RoleGrants = make(map[string][]string, len(u.RoleGrants))
		for k, v := range u.RoleGrants {
			c.RoleGrants[k] = slices.Clone(v)
		}
	}
	if u.Consents != nil {
		c.Consents = make(map[string]provisioner.Consent, len(u.Consents))
		for k, v := range u.Consents {
			v.Attributes = slices.Clone(v.Attributes)
			c.Consents[k] = v
		}
	}
	return &c
}

// updateError carries an UpdateFunc's error out of the transaction it
// aborted.
type updateError struct{ err error }

func (e updateError) Error() string { return e.err.Error() }

// callerError returns the UpdateFunc's error unchanged when err carries
// one, and otherwise err with the operation's context.
func callerError(err error, op string) error {
	if ue, ok := errors.AsType[updateError](err); ok {
		return ue.err
	}
	return fmt.Errorf("%s: %w", op, err)
}
