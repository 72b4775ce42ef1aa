package provisioner

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Profile is the set of user attributes one login maps from the
// provider's claims (see Policy.MapProfile).
type Profile struct {
	Email         string
	EmailVerified bool
	Name          string
	GivenName     string
	FamilyName    string
	// PreferredUsername feeds the username templates; it is not stored.
	PreferredUsername string
	Picture           string
	Groups            []string
	// GroupsSent tells a provider that sent no groups claim (keep the
	// stored groups) from one that sent an empty list (clear them).
	GroupsSent bool
	// DroppedGroups are the provider's groups that Groups leaves out
	// because they cannot travel in a comma-separated header (see
	// CheckGroupName); they are neither stored nor mapped to roles.
	DroppedGroups []string
	Attributes    map[string]string
}

// value returns the named attribute as text ("" when absent).
func (p *Profile) value(name string) string {
	switch name {
	case AttrEmail:
		return p.Email
	case AttrEmailVerified:
		if p.Email == "" {
			return ""
		}
		return strconv.FormatBool(p.EmailVerified)
	case AttrName:
		return p.Name
	case AttrGivenName:
		return p.GivenName
	case AttrFamilyName:
		return p.FamilyName
	case AttrPreferredUsername:
		return p.PreferredUsername
	case AttrPicture:
		return p.Picture
	case AttrGroups:
		return stringify(p.Groups)
	}
	return p.Attributes[name]
}

// storedAttributes names the attributes that creating a user from p
// stores: those with a value, in display order, custom ones sorted last.
// preferred_username is not among them: it only suggests a username.
func (p *Profile) storedAttributes() []string {
	var out []string
	for _, name := range standardAttrs {
		if name != AttrPreferredUsername && p.value(name) != "" {
			out = append(out, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Attributes)) {
		if p.Attributes[name] != "" {
			out = append(out, name)
		}
	}
	return out
}

// movesEmail reports whether p gives u another address: not the same
// up to ASCII letter case, as linking compares addresses.
func (p *Profile) movesEmail(u *User) bool {
	return p.Email != "" && asciiLower(strings.TrimSpace(u.Email)) != asciiLower(p.Email)
}

// AttributeValue is one attribute as a consent page lists it.
type AttributeValue struct {
	Name  string
	Value string
}

// newUser is the user that creating from p makes.
func (p *Profile) newUser(username string) *User {
	u := &User{Username: username}
	p.writeTo(u, nil)
	return u
}

// writeTo copies p's attributes onto u, except the names in skip.
// Scalar attributes are written when the provider sent a value: a
// missing claim usually means a missing scope, not a deletion. It
// returns the names of the attributes whose stored value changed.
//
// Groups are replaced whole when the provider sent a groups claim, even
// an empty one, because a provider's group list is authoritative and a
// group it stops sending must go.
func (p *Profile) writeTo(u *User, skip []string) (changed []string) {
	set := func(name string, dst *string, v string) {
		v = dropNUL(v) // no store keeps NUL in text
		if v == "" || *dst == v || slices.Contains(skip, name) {
			return
		}
		*dst = v
		changed = append(changed, name)
	}
	if p.Email != "" && !slices.Contains(skip, AttrEmail) {
		// A verified flag owned locally (an administrator's verdict)
		// speaks of the address it was given for: a new address takes
		// the provider's flag, and the verdict is no longer local.
		moved := p.movesEmail(u)
		if moved && slices.Contains(u.LocalAttributes, AttrEmailVerified) {
			u.LocalAttributes = slices.DeleteFunc(slices.Clone(u.LocalAttributes), func(n string) bool { return n == AttrEmailVerified })
		}
		if u.Email != p.Email {
			u.Email = p.Email
			changed = append(changed, AttrEmail)
		}
		if u.EmailVerified != p.EmailVerified && (moved || !slices.Contains(skip, AttrEmailVerified)) {
			u.EmailVerified = p.EmailVerified
			changed = append(changed, AttrEmailVerified)
		}
	}
	set(AttrName, &u.Name, p.Name)
	set(AttrGivenName, &u.GivenName, p.GivenName)
	set(AttrFamilyName, &u.FamilyName, p.FamilyName)
	set(AttrPicture, &u.Picture, p.Picture)
	if p.GroupsSent && !slices.Contains(skip, AttrGroups) && !slices.Equal(sortedUnique(u.Groups), p.Groups) {
		u.Groups = slices.Clone(p.Groups)
		changed = append(changed, AttrGroups)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Attributes)) {
		v := dropNUL(p.Attributes[name])
		if v == "" || u.Attributes[name] == v || slices.Contains(skip, name) {
			continue
		}
		if u.Attributes == nil {
			u.Attributes = map[string]string{}
		}
		u.Attributes[name] = v
		changed = append(changed, name)
	}
	return changed
}

// protocolClaims describe the sign-in, not the user; the identity record
// keeps them but a consent page need not ask about them.
var protocolClaims = []string{"iss", "sub", "aud", "azp", "exp", "iat", "nbf", "auth_time", "nonce", "at_hash", "c_hash", "jti", "sid", "acr", "amr"}

// claimNames lists the claims about the user in raw, as "claims.<name>",
// sorted: the identity record keeps the provider's claims, so consent
// must cover them as well as the mapped attributes.
func claimNames(raw []byte) []string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		if !slices.Contains(protocolClaims, k) {
			out = append(out, "claims."+k)
		}
	}
	slices.Sort(out)
	return out
}
