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

// SetLocalAttributes changes a user's attributes locally, as an
// administrator does: each changed attribute becomes locally owned, so
// connections with sync preserve_local no longer overwrite it. Values
// are keyed by attribute name (AttrEmail, AttrName, …, or a custom
// name); email_verified takes "true" or "false", groups a
// comma-separated list.
func SetLocalAttributes(ctx context.Context, s Store, userID string, values map[string]string) (*User, error) {
	for name := range values {
		if name == AttrPreferredUsername {
			return nil, fmt.Errorf("%w: %s is not stored; change the username instead", ErrInvalidChange, name)
		}
		if err := CheckAttributeName(name); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidChange, err)
		}
	}
	return s.UpdateUser(ctx, userID, func(u *User) error {
		for name, v := range values {
			switch name {
			case AttrEmail:
				// A new address is not verified unless the same change
				// says so: linking trusts a verified local email.
				if _, says := values[AttrEmailVerified]; !says && !strings.EqualFold(u.Email, v) {
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
		return nil
	})
}

// GrantLocalRoles grants roles locally. Local grants are never removed
// by a connection's sync.
func GrantLocalRoles(ctx context.Context, s Store, userID string, roles ...string) (*User, error) {
	for _, r := range roles {
		if err := CheckRoleName(r); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidChange, err)
		}
	}
	return s.UpdateUser(ctx, userID, func(u *User) error {
		setRoleGrant(u, RoleSourceLocal, sortedUnique(append(slices.Clone(u.RoleGrants[RoleSourceLocal]), roles...)))
		return nil
	})
}

// RevokeLocalRoles removes roles granted locally. Roles a connection
// granted are the connection's: they follow the provider's groups.
func RevokeLocalRoles(ctx context.Context, s Store, userID string, roles ...string) (*User, error) {
	return s.UpdateUser(ctx, userID, func(u *User) error {
		kept := slices.DeleteFunc(slices.Clone(u.RoleGrants[RoleSourceLocal]), func(r string) bool { return slices.Contains(roles, r) })
		setRoleGrant(u, RoleSourceLocal, kept)
		return nil
	})
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
