package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The synthetic users all come from one OpenID Connect connection. User
// number i (0, 1, 2, …) is a pure function of i, so the benchmark never
// keeps a million users in memory: it regenerates what it needs.
const (
	connection = "corp"
	issuer     = "https://login.corp.example/"
)

type namePart struct{ display, ascii string }

var (
	givenNames = []namePart{
		{"Ana", "ana"}, {"José", "jose"}, {"Zoë", "zoe"}, {"Ólafur", "olafur"},
		{"Marie-Claire", "marie-claire"}, {"Li", "li"}, {"Priya", "priya"}, {"Kwame", "kwame"},
		{"Sven", "sven"}, {"Aiko", "aiko"}, {"Mateo", "mateo"}, {"Fatima", "fatima"},
		{"Noah", "noah"}, {"Emma", "emma"}, {"Yusuf", "yusuf"}, {"Ingrid", "ingrid"},
	}
	familyNames = []namePart{
		{"García", "garcia"}, {"Müller", "mueller"}, {"Øster", "oster"}, {"O'Brien", "obrien"},
		{"Nakamura", "nakamura"}, {"Okafor", "okafor"}, {"Kowalski", "kowalski"}, {"Smith", "smith"},
		{"Dubois", "dubois"}, {"Rossi", "rossi"}, {"Andersson", "andersson"}, {"Chen", "chen"},
		{"Haddad", "haddad"}, {"Singh", "singh"}, {"Novak", "novak"}, {"Silva", "silva"},
	}
	groupPool = []string{"engineering", "sales", "support", "finance", "hr", "ops", "admins", "contractors"}
)

// mix is SplitMix64's finaliser: a bijection on uint64, so distinct
// users get distinct subjects.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// claimsFor returns what the provider asserts about user i: a random
// looking 32-hex-digit subject, a verified mixed-case email (so the local
// username is the lower-cased email), non-ASCII display names, one to
// three groups and the raw claims as the provider would send them
// (about 350 bytes of JSON).
func claimsFor(i int) provisioner.Claims {
	h := mix(uint64(i))
	g := givenNames[h%uint64(len(givenNames))]
	f := familyNames[(h>>8)%uint64(len(familyNames))]
	sub := fmt.Sprintf("%016x%016x", h, mix(h))
	email := fmt.Sprintf("%s.%s.%d@Corp.Example", title(g.ascii), title(f.ascii), i)
	groups := []string{"staff"}
	for k := 0; k < int((h>>16)%3); k++ {
		gr := groupPool[(h>>(20+4*k))%uint64(len(groupPool))]
		if !slices.Contains(groups, gr) {
			groups = append(groups, gr)
		}
	}
	c := provisioner.Claims{
		Issuer:        issuer,
		Subject:       sub,
		Email:         email,
		EmailVerified: true,
		Name:          g.display + " " + f.display,
		GivenName:     g.display,
		FamilyName:    f.display,
		Picture:       "https://avatars.corp.example/" + sub[:16] + ".png",
		Groups:        groups,
	}
	raw, err := json.Marshal(map[string]any{
		"iss": c.Issuer, "sub": c.Subject, "aud": "caddy-jitauth",
		"email": c.Email, "email_verified": c.EmailVerified,
		"name": c.Name, "given_name": c.GivenName, "family_name": c.FamilyName,
		"picture": c.Picture, "groups": c.Groups,
	})
	if err != nil {
		panic(err) // strings only
	}
	c.Raw = raw
	return c
}

func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func keyFor(i int) provisioner.IdentityKey {
	c := claimsFor(i)
	return provisioner.IdentityKey{Connection: connection, Issuer: c.Issuer, Subject: c.Subject}
}

// defaultPolicy is JIT on with every default, as `jit` alone configures.
var defaultPolicy = provisioner.Policy{Enabled: true}

func usernameFor(i int) string {
	c := claimsFor(i)
	return defaultPolicy.Username(connection, c, defaultPolicy.MapProfile(connection, c))
}

// newUser builds the arguments of Store.CreateUser exactly as
// Provisioner.Provision does for a first login with claims c at time at
// (see provisioner.go): the default username, the claims' profile, and
// the login time as the user's last login and the identity's creation
// and last login.
func newUser(c provisioner.Claims, at time.Time) (*provisioner.User, provisioner.Identity) {
	p := defaultPolicy.MapProfile(connection, c)
	u := &provisioner.User{
		Username:      defaultPolicy.Username(connection, c, p),
		Email:         p.Email,
		EmailVerified: p.EmailVerified,
		Name:          p.Name,
		GivenName:     p.GivenName,
		FamilyName:    p.FamilyName,
		Picture:       p.Picture,
		Groups:        p.Groups,
		Attributes:    p.Attributes,
		LastLoginAt:   at,
	}
	id := provisioner.Identity{
		IdentityKey: provisioner.IdentityKey{Connection: connection, Issuer: c.Issuer, Subject: c.Subject},
		RawClaims:   c.Raw,
		CreatedAt:   at,
		LastLoginAt: at,
	}
	return u, id
}

// row is one user and its identity as a store's CreateUser would write
// them: ID, status and the store's timestamps filled in.
type row struct {
	user  provisioner.User
	norm  string // users.username_norm
	ident provisioner.Identity
}

// bulkRow returns user i as the store would have written it had it been
// created through CreateUser at time at (the store's own clock and the
// provisioner's login time coincide here; through the API they differ
// by the microseconds between the two time.Now calls).
func bulkRow(i int, id string, at time.Time) row {
	at = at.UTC()
	u, ident := newUser(claimsFor(i), at)
	u.ID = id
	u.Status = provisioner.StatusActive
	u.CreatedAt, u.UpdatedAt = at, at
	ident.UserID = id
	return row{user: *u, norm: provisioner.NormalizeUsername(u.Username), ident: ident}
}

// encodeJSONList and encodeJSONMap mirror the stores' encodeGroups and
// encodeAttributes: NULL when empty, else the JSON text.
func encodeJSONList(g []string) any {
	if len(g) == 0 {
		return nil
	}
	b, err := json.Marshal(g)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func encodeJSONMap(a map[string]string) any {
	if len(a) == 0 {
		return nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// window is the span of time in which a user was written.
type window struct{ from, to time.Time }

// checkUser compares what the store returned for user i with what
// provisioning user i must have produced. wantID is checked when set.
func checkUser(u *provisioner.User, i int, wantID string, w window) error {
	want, _ := newUser(claimsFor(i), time.Time{})
	var diffs []string
	ne := func(field string, got, want any) {
		diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, got, want))
	}
	if wantID != "" && u.ID != wantID {
		ne("ID", u.ID, wantID)
	}
	if u.Username != want.Username {
		ne("Username", u.Username, want.Username)
	}
	if u.Email != want.Email {
		ne("Email", u.Email, want.Email)
	}
	if u.EmailVerified != want.EmailVerified {
		ne("EmailVerified", u.EmailVerified, want.EmailVerified)
	}
	if u.Name != want.Name || u.GivenName != want.GivenName || u.FamilyName != want.FamilyName {
		ne("names", []string{u.Name, u.GivenName, u.FamilyName}, []string{want.Name, want.GivenName, want.FamilyName})
	}
	if u.Picture != want.Picture {
		ne("Picture", u.Picture, want.Picture)
	}
	if !slices.Equal(u.Groups, want.Groups) {
		ne("Groups", u.Groups, want.Groups)
	}
	if len(u.Attributes) != 0 {
		ne("Attributes", u.Attributes, "none")
	}
	if u.Status != provisioner.StatusActive {
		ne("Status", u.Status, provisioner.StatusActive)
	}
	from := w.from.Truncate(time.Microsecond) // PostgreSQL keeps microseconds
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"CreatedAt", u.CreatedAt}, {"UpdatedAt", u.UpdatedAt}, {"LastLoginAt", u.LastLoginAt}} {
		if t.t.Before(from) || t.t.After(w.to) || t.t.Location() != time.UTC {
			ne(t.name, t.t, fmt.Sprintf("UTC within [%s, %s]", from.Format(time.RFC3339Nano), w.to.Format(time.RFC3339Nano)))
		}
	}
	if !u.UpdatedAt.Equal(u.CreatedAt) {
		ne("UpdatedAt", u.UpdatedAt, "CreatedAt")
	}
	if len(diffs) > 0 {
		return fmt.Errorf("user %d (%s): %s", i, u.ID, strings.Join(diffs, "; "))
	}
	return nil
}

// checkIdentity compares an identity returned by Store.Identities with
// user i's.
func checkIdentity(id provisioner.Identity, i int, userID string, w window) error {
	c := claimsFor(i)
	if id.Connection != connection || id.Issuer != c.Issuer || id.Subject != c.Subject || id.UserID != userID {
		return fmt.Errorf("identity of user %d: got %+v, want %s/%s/%s of %s", i, id.IdentityKey, connection, c.Issuer, c.Subject, userID)
	}
	// PostgreSQL keeps raw claims as jsonb, which reorders keys and
	// adds spaces: compare the JSON values.
	var got, want any
	if err := json.Unmarshal(id.RawClaims, &got); err != nil {
		return fmt.Errorf("identity of user %d: raw claims: %w", i, err)
	}
	if err := json.Unmarshal(c.Raw, &want); err != nil {
		return err
	}
	if fmt.Sprint(got) != fmt.Sprint(want) { // fmt sorts map keys
		return fmt.Errorf("identity of user %d: raw claims %s, want %s", i, id.RawClaims, c.Raw)
	}
	from := w.from.Truncate(time.Microsecond)
	for _, t := range []time.Time{id.CreatedAt, id.LastLoginAt} {
		if t.Before(from) || t.After(w.to) {
			return fmt.Errorf("identity of user %d: time %s outside the fill", i, t)
		}
	}
	if !id.CreatedAt.Equal(id.LastLoginAt) {
		return fmt.Errorf("identity of user %d: created %s, last login %s", i, id.CreatedAt, id.LastLoginAt)
	}
	return nil
}
