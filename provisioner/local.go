package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidChange wraps a local change that names no valid attribute or
// role; nothing was written.
var ErrInvalidChange = errors.New("invalid change")

// LocalChange is an administrator's change to one user: attributes set
// locally, and local roles granted and revoked. ApplyLocalChange applies
// it whole or not at all.
type LocalChange struct {
	// Set are attribute values by name (AttrEmail, AttrName, …, or a
	// custom name); email_verified takes "true" or "false", groups a
	// comma-separated list.
	Set map[string]string
	// Grant and Revoke are local roles.
	Grant, Revoke []string
	// Keep, when set, sets or clears the user's Keep flag (exempt from
	// deprovisioning).
	Keep *bool
}

// maxLocalValueLength bounds an attribute value an administrator sets.
const maxLocalValueLength = 4096

// maxLocalRolesLength bounds a user's local roles, joined by commas, as
// a grant leaves them: as much as one attribute value.
const maxLocalRolesLength = 4096

// ApplyLocalChange checks the whole change and applies it in one store
// update, so a change that is refused in part writes nothing. Each set
// attribute becomes locally owned, so connections with sync
// preserve_local no longer overwrite it. Local role grants are never
// removed by a connection's sync; roles a connection granted are the
// connection's (they follow the provider's groups) and Revoke leaves them.
func ApplyLocalChange(ctx context.Context, s UserStore, userID string, ch LocalChange) (*User, error) {
	u, _, err := ApplyLocalChangeFrom(ctx, s, userID, ch)
	return u, err
}

// ApplyLocalChangeFrom is ApplyLocalChange, also returning the user's
// local role grants as the store update found them, before the change:
// what an audit record compares the result with, since a user read
// before the update may be stale by then (another change in between).
func ApplyLocalChangeFrom(ctx context.Context, s UserStore, userID string, ch LocalChange) (*User, []string, error) {
	for name, v := range ch.Set {
		if name == AttrPreferredUsername {
			return nil, nil, fmt.Errorf("%w: %s is not stored; change the username instead", ErrInvalidChange, name)
		}
		if err := CheckAttributeName(name); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrInvalidChange, err)
		}
		if name == AttrEmailVerified && v != "true" && v != "false" {
			return nil, nil, fmt.Errorf("%w: email_verified is %q; use \"true\" or \"false\"", ErrInvalidChange, v)
		}
		if name == AttrEmail && len(v) > maxEmailLength {
			// The stores index emails (a PostgreSQL B-tree entry holds
			// at most 2704 bytes), and a login drops an address this
			// long: refused here alike on every store.
			return nil, nil, fmt.Errorf("%w: the email is %d bytes; an address has at most %d (RFC 5321)", ErrInvalidChange, len(v), maxEmailLength)
		}
		if len(v) > maxLocalValueLength {
			// Every attribute travels in the session cookie (about 12 KB
			// in all) and most in a header: a few values far longer than
			// any name would make the user's session too large to issue,
			// and the user unable to sign in.
			return nil, nil, fmt.Errorf("%w: the value of %s is %d bytes; at most %d", ErrInvalidChange, name, len(v), maxLocalValueLength)
		}
		if !StorableText(v) {
			// The login path drops NULs before storing; an
			// administrator's value is refused instead, so what was
			// typed is what is kept, on every store alike.
			return nil, nil, fmt.Errorf("%w: the value of %s holds a NUL character or is not valid UTF-8; remove it", ErrInvalidChange, name)
		}
	}
	for _, r := range ch.Grant {
		if err := CheckRoleName(r); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrInvalidChange, err)
		}
	}
	var before []string
	u, err := s.UpdateUser(ctx, userID, func(u *User) error {
		before = slices.Clone(u.RoleGrants[RoleSourceLocal])
		setLocalAttributes(u, ch.Set)
		local := slices.Clone(u.RoleGrants[RoleSourceLocal])
		local = append(local, ch.Grant...)
		local = slices.DeleteFunc(local, func(r string) bool { return slices.Contains(ch.Revoke, r) })
		local = sortedUnique(local)
		if n := len(strings.Join(local, ",")); len(ch.Grant) > 0 && n > maxLocalRolesLength {
			// Every role travels in the user's session cookie: past
			// about 12 KB the session cannot be issued, and the user
			// cannot sign in at all. A revocation is never refused.
			return fmt.Errorf("%w: the local roles would take %d bytes (joined by commas); at most %d, since every role travels in the user's session cookie; revoke some first", ErrInvalidChange, n, maxLocalRolesLength)
		}
		setRoleGrant(u, RoleSourceLocal, local)
		if ch.Keep != nil {
			u.Keep = *ch.Keep
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return u, before, nil
}

// SetLocalAttributes changes a user's attributes locally, as an
// administrator does (ApplyLocalChange with Set alone).
func SetLocalAttributes(ctx context.Context, s UserStore, userID string, values map[string]string) (*User, error) {
	return ApplyLocalChange(ctx, s, userID, LocalChange{Set: values})
}

// GrantLocalRoles grants roles locally (ApplyLocalChange with Grant alone).
func GrantLocalRoles(ctx context.Context, s UserStore, userID string, roles ...string) (*User, error) {
	return ApplyLocalChange(ctx, s, userID, LocalChange{Grant: roles})
}

// RevokeLocalRoles removes roles granted locally (ApplyLocalChange with
// Revoke alone).
func RevokeLocalRoles(ctx context.Context, s UserStore, userID string, roles ...string) (*User, error) {
	return ApplyLocalChange(ctx, s, userID, LocalChange{Revoke: roles})
}

// setLocalAttributes writes values into u and marks them locally owned.
func setLocalAttributes(u *User, values map[string]string) {
	for name, v := range values {
		switch name {
		case AttrEmail:
			// A new address is not verified unless the same change says
			// so: linking trusts a verified local email. New as linking
			// compares: up to ASCII letter case only.
			if _, says := values[AttrEmailVerified]; !says && asciiLower(u.Email) != asciiLower(v) {
				u.EmailVerified = false
			}
			u.Email = v
		case AttrEmailVerified:
			u.EmailVerified = v == "true"
		case AttrName:
			u.Name = v
		case AttrGivenName:
			u.GivenName = v
		case AttrFamilyName:
			u.FamilyName = v
		case AttrPicture:
			u.Picture = v
		case AttrGroups:
			u.Groups = sortedUnique(splitList(v))
		default:
			if u.Attributes == nil {
				u.Attributes = map[string]string{}
			}
			u.Attributes[name] = v
		}
		if !slices.Contains(u.LocalAttributes, name) {
			u.LocalAttributes = append(u.LocalAttributes, name)
		}
	}
	slices.Sort(u.LocalAttributes)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
