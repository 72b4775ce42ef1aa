// Package userrow holds what the SQL stores share about a user's row:
// the stored form of the columns an UpdateFunc may change, a deep copy
// for UpdateFuncs to work on, and carrying an UpdateFunc's error out of
// the transaction it aborted. The SQL itself stays in each store.
package userrow

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Editable holds the stored form of the user columns an UpdateFunc may
// change. The JSON columns are JSON text, or nil (NULL) when empty; JSON
// objects are encoded with sorted keys, so two values are equal exactly
// when the users agree on these fields.
type Editable struct {
	Email, EmailNorm                     string
	EmailVerified                        bool
	Name, GivenName, FamilyName, Picture string
	NameNorm                             string
	Groups, Attributes                   any
	RoleGrants, LocalAttributes          any
	Consents                             any
	Keep                                 bool
}

// Columns returns the editable columns of u as a store writes them.
func Columns(u *provisioner.User) (Editable, error) {
	c := Editable{
		Email:         u.Email,
		EmailNorm:     provisioner.NormalizeEmail(u.Email),
		EmailVerified: u.EmailVerified,
		Name:          u.Name,
		NameNorm:      provisioner.NormalizeName(u.Name),
		GivenName:     u.GivenName,
		FamilyName:    u.FamilyName,
		Picture:       u.Picture,
		Keep:          u.Keep,
	}
	var err error
	if c.Groups, err = EncodeJSON("groups", len(u.Groups), u.Groups); err != nil {
		return Editable{}, err
	}
	if c.Attributes, err = EncodeJSON("attributes", len(u.Attributes), u.Attributes); err != nil {
		return Editable{}, err
	}
	if c.RoleGrants, err = EncodeJSON("role grants", len(u.RoleGrants), u.RoleGrants); err != nil {
		return Editable{}, err
	}
	if c.LocalAttributes, err = EncodeJSON("local attributes", len(u.LocalAttributes), u.LocalAttributes); err != nil {
		return Editable{}, err
	}
	consents := maps.Clone(u.Consents)
	ConsentsInUTC(consents)
	if c.Consents, err = EncodeJSON("consents", len(consents), consents); err != nil {
		return Editable{}, err
	}
	return c, nil
}

// EncodeJSON returns v as JSON text, or nil for an empty value (n is its
// length), which the stores keep as NULL.
func EncodeJSON(what string, n int, v any) (any, error) {
	if n == 0 {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", what, err)
	}
	return string(b), nil
}

// ConsentsInUTC puts the consent times of c in UTC, in place.
func ConsentsInUTC(c map[string]provisioner.Consent) {
	for k, v := range c {
		v.At = v.At.UTC()
		c[k] = v
	}
}

// Clone returns a deep copy of u, so an UpdateFunc cannot reach the
// store's own values.
func Clone(u *provisioner.User) *provisioner.User {
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

// UpdateError carries an UpdateFunc's error out of the transaction it
// aborted.
type UpdateError struct{ Err error }

func (e UpdateError) Error() string { return e.Err.Error() }

// CallerError returns the UpdateFunc's error unchanged when err carries
// one, and otherwise err with the operation's context.
func CallerError(err error, op string) error {
	if ue, ok := errors.AsType[UpdateError](err); ok {
		return ue.Err
	}
	return fmt.Errorf("%s: %w", op, err)
}
