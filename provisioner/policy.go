package provisioner

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Mode is how a connection provisions new users.
type Mode string

const (
	// ModeSilent provisions without asking the user.
	ModeSilent Mode = "silent"
	// ModeConsent shows the attributes that will be stored and provisions
	// only when the user allows it.
	ModeConsent Mode = "consent"
	// ModeUsername lets the user choose the local username (and consent).
	ModeUsername Mode = "username"
)

// Link is how a new identity may be linked to an existing local user.
type Link string

const (
	// LinkOff makes a new local user for every new identity.
	LinkOff Link = "off"
	// LinkVerifiedEmail links a new identity to the one existing user
	// with the same email, only when the provider asserts the email
	// verified and the local user's email is verified too.
	LinkVerifiedEmail Link = "verified_email"
)

// Sync is what later logins do to the attributes of an existing user.
type Sync string

const (
	// SyncOverride writes the provider's values on every login.
	SyncOverride Sync = "override"
	// SyncPreserveLocal writes the provider's values except for the
	// attributes that were changed locally (User.LocalAttributes).
	SyncPreserveLocal Sync = "preserve_local"
	// SyncFirstLogin writes attributes only when the user is created.
	SyncFirstLogin Sync = "first_login"
)

// Attribute names: the keys of Policy.Map, of User.LocalAttributes and
// of Consent.Attributes. Any other name is a custom attribute, kept in
// User.Attributes.
const (
	AttrEmail             = "email"
	AttrEmailVerified     = "email_verified"
	AttrName              = "name"
	AttrGivenName         = "given_name"
	AttrFamilyName        = "family_name"
	AttrPicture           = "picture"
	AttrGroups            = "groups"
	AttrPreferredUsername = "preferred_username"
)

// standardAttrs are the attributes with defaults, in display order.
var standardAttrs = []string{AttrEmail, AttrEmailVerified, AttrName, AttrGivenName, AttrFamilyName, AttrPreferredUsername, AttrPicture, AttrGroups}

// reservedAttrNames cannot be custom attributes: they name things that
// are not profile attributes, and mapping them would read as if it
// changed them.
var reservedAttrNames = []string{"id", "username", "status", "roles", "role_grants", "subject", "issuer", "connection", "created_at", "updated_at", "last_login_at"}

var attrNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// DefaultUsernamePattern is what a chosen username (ModeUsername) must
// match after normalisation when the connection sets no pattern: plain
// ASCII, so no chosen name can be a look-alike of another.
const DefaultUsernamePattern = `^[a-z0-9][a-z0-9._-]{1,31}$`

// DefaultReservedUsernames are names no JIT user gets, chosen or not,
// because upstream apps often treat them as special.
var DefaultReservedUsernames = []string{"admin", "administrator", "root", "system", "superuser", "support", "security", "postmaster", "webmaster", "hostmaster", "abuse", "noreply", "anonymous", "nobody", "guest"}

// RoleRule grants a local role: to everyone of the connection when
// FromGroups is empty, else to users the provider places in one of
// FromGroups.
type RoleRule struct {
	// Role is the local role granted.
	Role string `json:"role"`
	// FromGroups are provider groups; any one of them grants Role.
	FromGroups []string `json:"from_groups,omitempty"`
}

// Policy is one connection's JIT configuration.
type Policy struct {
	// Enabled turns JIT provisioning on. Off, nothing about the user is
	// stored and identity comes from the session alone.
	Enabled bool
	// Mode is how new users are provisioned; empty means silent.
	Mode Mode
	// Link is how a new identity may join an existing user; empty means off.
	Link Link
	// Sync is what later logins update; empty means override.
	Sync Sync
	// TrustEmail treats the email as verified when the provider does not
	// say either way (it never overrides a provider that says "false").
	TrustEmail bool
	// Map maps attributes to expressions over the claims, replacing the
	// defaults for the standard attributes and adding custom ones.
	Map map[string]Expr
	// UsernameTemplates lists username templates, tried in order until one gives
	// a usable, unreserved name (see Username and SessionName for the
	// rules a result must meet). Empty means {verified_email}, then
	// {profile.preferred_username}, then {connection}-{subject} with JIT
	// on, and {verified_email}, then {subject} with JIT off.
	UsernameTemplates []Expr
	// UsernamePattern is the regular expression a chosen username must
	// match (ModeUsername); empty means DefaultUsernamePattern.
	UsernamePattern string
	// Reserved are usernames nobody is given or may choose (compared
	// after normalisation); nil means DefaultReservedUsernames.
	Reserved []string
	// Roles are the connection's role rules.
	Roles []RoleRule
	// FallbackPrefixes are how the names that templates over the subject
	// alone give begin, on every connection whose users share the store
	// ("corp-" for the default {connection}-{subject} of connection
	// corp; see OwnFallbackPrefixes). A chosen username, or one from
	// a template over a claim the user may set, never begins with one of
	// them: those names are kept free for the identities whose subjects
	// they name (else anyone who learns a subject could take that
	// person's last-resort name before their first sign-in). This
	// policy's own are always kept, whether listed or not.
	FallbackPrefixes []string

	usernameRE *regexp.Regexp
}

var (
	defaultUsernameTemplates = mustTemplates("{verified_email}", "{profile.preferred_username}", "{connection}-{subject}")
	// defaultSessionTemplates name JIT-off sessions: nothing checks
	// those names for uniqueness, so the default uses only what a
	// provider cannot hand to someone else: a verified email, or the
	// subject (qualified by the connection).
	defaultSessionTemplates = mustTemplates("{verified_email}", "{subject}")
)

func mustTemplates(srcs ...string) []Expr {
	var out []Expr
	for _, s := range srcs {
		e, err := ParseExpr(s, true)
		if err != nil {
			panic(err)
		}
		out = append(out, e)
	}
	return out
}

// Validate checks the policy and prepares it for use; call it once
// before Provision. Errors say what to fix.
func (p *Policy) Validate() error {
	switch p.Mode {
	case "", ModeSilent, ModeConsent, ModeUsername:
	default:
		return fmt.Errorf("unknown JIT mode %q: use silent, consent or username", p.Mode)
	}
	switch p.Link {
	case "", LinkOff, LinkVerifiedEmail:
	default:
		return fmt.Errorf("unknown link %q: use off or verified_email", p.Link)
	}
	switch p.Sync {
	case "", SyncOverride, SyncPreserveLocal, SyncFirstLogin:
	default:
		return fmt.Errorf("unknown sync %q: use override, preserve_local or first_login", p.Sync)
	}
	for name := range p.Map {
		if err := CheckAttributeName(name); err != nil {
			return fmt.Errorf("map %s: %v", name, err)
		}
	}
	pattern := p.UsernamePattern
	if pattern == "" {
		pattern = DefaultUsernamePattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fmt.Errorf("username_pattern %q: %v", pattern, err)
	}
	p.usernameRE = re
	for _, r := range p.Roles {
		if err := CheckRoleName(r.Role); err != nil {
			return err
		}
		for _, g := range r.FromGroups {
			if strings.TrimSpace(g) == "" {
				return fmt.Errorf("role %s: empty group name", r.Role)
			}
			if err := CheckGroupName(g); err != nil {
				return fmt.Errorf("role %s: %v; provider groups with commas or control characters are dropped, so this rule could never match", r.Role, err)
			}
		}
	}
	return nil
}

// CheckAttributeName reports whether name can be mapped: a standard
// attribute, or a custom name of lower-case letters, digits and
// underscores that does not shadow a non-attribute.
func CheckAttributeName(name string) error {
	if slices.Contains(standardAttrs, name) {
		return nil
	}
	if !attrNameRE.MatchString(name) {
		return fmt.Errorf("attribute name %q: use lower-case letters, digits and '_', starting with a letter", name)
	}
	if slices.Contains(reservedAttrNames, name) {
		return fmt.Errorf("attribute name %q is reserved", name)
	}
	return nil
}

// CheckRoleName reports whether role can be a local role name: it
// travels in a comma-separated header, so no commas, spaces or controls.
func CheckRoleName(role string) error {
	if role == "" || strings.ContainsFunc(role, func(r rune) bool {
		return r <= ' ' || r == ',' || r == ';' || r == '"' || r == 0x7f
	}) {
		return fmt.Errorf("role name %q: use a non-empty name without spaces, commas, semicolons or quotes", role)
	}
	return nil
}

func (p *Policy) mode() Mode {
	if p.Mode == "" {
		return ModeSilent
	}
	return p.Mode
}

func (p *Policy) sync() Sync {
	if p.Sync == "" {
		return SyncOverride
	}
	return p.Sync
}

func (p *Policy) reserved(norm string) bool {
	list := p.Reserved
	if list == nil {
		list = DefaultReservedUsernames
	}
	for _, r := range list {
		if NormalizeUsername(r) == norm {
			return true
		}
	}
	return false
}

// fallbackShaped reports whether name begins as the names of templates
// over the subject do, on connection (this policy's) or on another
// connection sharing the store (p.FallbackPrefixes), or ends as their
// identity-suffixed forms do.
func (p *Policy) fallbackShaped(connection, name string) bool {
	if identitySuffixed(name) {
		return true
	}
	has := func(prefix string) bool { return prefix != "" && strings.HasPrefix(name, prefix) }
	if connection != "" && slices.ContainsFunc(p.OwnFallbackPrefixes(connection), has) {
		return true
	}
	return slices.ContainsFunc(p.FallbackPrefixes, has)
}

// OwnFallbackPrefixes returns how the names of this policy's templates
// over the subject alone (fixed: no claim a user may set) begin on
// connection, as a username is normalised: the text before the first
// {subject} or {issuer}, "corp-" for {connection}-{subject}. A template
// that begins with either ({subject} alone) has no prefix to keep free;
// a taken name of it falls through to its identity-suffixed form
// (usernameCandidates).
func (p *Policy) OwnFallbackPrefixes(connection string) []string {
	if !p.Enabled {
		return nil
	}
	templates := p.UsernameTemplates
	if len(templates) == 0 {
		templates = defaultUsernameTemplates
	}
	var out []string
	for _, t := range templates {
		if prefix := localName(t.fixedPrefix(connection)); prefix != "" {
			out = append(out, prefix)
		}
	}
	return out
}

// plainASCII reports whether s is printable ASCII only.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// MapProfile applies the policy's mapping to the claims: each standard
// attribute comes from its `map` expression when there is one, else from
// the connector's normalised claim; custom attributes come from theirs.
func (p *Policy) MapProfile(connection string, c Claims) Profile {
	env := newEvalEnv(connection, c)
	verified := c.EmailVerified || (p.TrustEmail && !c.EmailVerifiedKnown && c.Email != "")
	pr := Profile{
		Email:             c.Email,
		EmailVerified:     verified,
		Name:              c.Name,
		GivenName:         c.GivenName,
		FamilyName:        c.FamilyName,
		PreferredUsername: c.PreferredUsername,
		Picture:           c.Picture,
		Groups:            c.Groups,
		GroupsSent:        c.Groups != nil,
	}
	for name, e := range p.Map {
		switch name {
		case AttrEmail:
			pr.Email = e.eval(env)
		case AttrEmailVerified:
			pr.EmailVerified = strings.EqualFold(strings.TrimSpace(e.eval(env)), "true")
		case AttrName:
			pr.Name = e.eval(env)
		case AttrGivenName:
			pr.GivenName = e.eval(env)
		case AttrFamilyName:
			pr.FamilyName = e.eval(env)
		case AttrPreferredUsername:
			pr.PreferredUsername = e.eval(env)
		case AttrPicture:
			pr.Picture = e.eval(env)
		case AttrGroups:
			pr.Groups, pr.GroupsSent = e.evalList(env)
		default:
			if v := e.eval(env); v != "" {
				if pr.Attributes == nil {
					pr.Attributes = map[string]string{}
				}
				pr.Attributes[name] = v
			}
		}
	}
	pr.storable()
	pr.Email = strings.TrimSpace(pr.Email)
	_, emailMapped := p.Map[AttrEmail]
	_, verifiedMapped := p.Map[AttrEmailVerified]
	if emailMapped && !verifiedMapped && asciiLower(pr.Email) != asciiLower(strings.TrimSpace(c.Email)) {
		// The provider's email_verified was said of its email claim; an
		// address mapped from another claim (Entra ID's mail or upn, a
		// directory attribute the user may edit) is not vouched for by it.
		pr.EmailVerified = false
	}
	if pr.Email == "" {
		pr.EmailVerified = false
	}
	// A group that cannot travel in a comma-separated header is dropped
	// here, so the session, the headers, the stored groups and the role
	// rules all see the same list.
	kept, dropped := FilterGroups(pr.Groups)
	pr.Groups, pr.DroppedGroups = sortedUnique(kept), dropped
	return pr
}

// Username returns the local username the templates give for this
// profile (JIT on): the first candidate of usernameCandidates, or "".
func (p *Policy) Username(connection string, c Claims, pr Profile) string {
	if cands := p.usernameCandidates(connection, c, pr); len(cands) > 0 {
		return cands[0].name
	}
	return ""
}

// usernameCandidate is one name the templates offer a new local user.
type usernameCandidate struct {
	name string
	// verifiedEmail: the name is the user's verified email. Taken by
	// another user, it ends the login in a conflict rather than falling
	// through to the next candidate: whoever has it owns that mailbox.
	verifiedEmail bool
}

// usernameCandidates lists, in template order and without repeats, the
// local usernames the templates give for this profile. Each result is
// cleaned (cleanUsername) and must not be reserved, and:
//
//   - a result with '@' is used only when it is the user's own verified
//     email, so nobody gets another person's address as a name from an
//     unverified email or a provider-chosen claim (preferred_username);
//   - ':' is reserved for JIT-off names qualified by their connection
//     (SessionName), and '%' for the escapes in them, so both become '_'
//     and no local username can equal such a name, decoded or not;
//   - '/', '\', '<', '>' and a leading '.' become '_' (plainName), so a
//     name is one plain path segment and no markup;
//   - a result of a template over a claim the user may set
//     (preferred_username, nickname, any claim but the subject) is
//     plain ASCII, as chosen names are by default, so it is no
//     look-alike of another name ("\u0430lice" of "alice", "adm\u0131n"
//     of the reserved "admin"), and it does not have the shape of a
//     {connection}-{subject} fallback (fallbackShaped).
func (p *Policy) usernameCandidates(connection string, c Claims, pr Profile) []usernameCandidate {
	env := newEvalEnv(connection, c)
	env.profile = &pr
	templates := p.UsernameTemplates
	if len(templates) == 0 {
		templates = defaultUsernameTemplates
	}
	email := verifiedEmailName(pr)
	var out []usernameCandidate
	var suffixed []string
	for _, t := range templates {
		u := cleanUsername(t.eval(env))
		cand := usernameCandidate{name: u}
		if strings.Contains(u, "@") {
			if email == "" || u != email {
				continue
			}
			cand.verifiedEmail = true
		} else {
			cand.name = localName(u)
		}
		if !cand.verifiedEmail && !t.fixed() && (!plainASCII(cand.name) || p.fallbackShaped(connection, cand.name)) {
			continue
		}
		if cand.name == "" || p.reserved(cand.name) || slices.ContainsFunc(out, func(o usernameCandidate) bool { return o.name == cand.name }) {
			continue
		}
		out = append(out, cand)
		if t.fixed() && !cand.verifiedEmail {
			suffixed = append(suffixed, cand.name+"-"+identitySuffix(connection, c))
		}
	}
	// Last, the names of templates over the subject with a suffix of the
	// identity's own: such a name is this identity's alone, but another
	// may hold it all the same (nested connection names, corp's subject
	// "eu-x" and corp-eu's "x"; a name given before the prefixes were
	// kept free; a template with no prefix to keep), and that must not
	// end this user's every sign-in on "account conflict".
	for _, name := range suffixed {
		if len(name) <= MaxUsernameLength && !slices.ContainsFunc(out, func(o usernameCandidate) bool { return o.name == name }) {
			out = append(out, usernameCandidate{name: name})
		}
	}
	return out
}

// ShadowedTemplates returns this policy's username templates over
// claims a user may set that can never give a name on connection: every
// result begins as a kept prefix (FallbackPrefixes), so it is skipped
// ("{connection}-{profile.preferred_username}" beside the default
// "{connection}-{subject}"). Loading warns of them.
func (p *Policy) ShadowedTemplates(connection string) []string {
	if !p.Enabled {
		return nil
	}
	var out []string
	for _, t := range p.UsernameTemplates {
		if t.fixed() {
			continue
		}
		lead := localName(t.leadingText(connection))
		if lead != "" && p.fallbackShaped(connection, lead) {
			out = append(out, t.String())
		}
	}
	return out
}

// localName is a cleaned template result as a local username spells
// it: ':' and '%' (reserved for JIT-off names) and what would leave a
// path segment become '_' (plainName). A kept prefix is spelled the
// same, so that "{connection}:{subject}" keeps "corp_" free, the names
// it gives.
func localName(s string) string {
	return plainName(strings.NewReplacer(QualifierSeparator, "_", EscapeMark, "_").Replace(cleanUsername(s)))
}

// identitySuffixed reports whether name ends as an identity-suffixed
// name does ("-" and 8 hex digits): anyone who knows a subject can
// compute its suffix, so no claim-derived or chosen name may take one.
func identitySuffixed(name string) bool {
	if len(name) < 9 || name[len(name)-9] != '-' {
		return false
	}
	for _, c := range name[len(name)-8:] {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// identitySuffix is 8 hex digits of a hash of the identity (connection,
// issuer, subject): the same on every sign-in of one identity.
func identitySuffix(connection string, c Claims) string {
	sum := sha256.Sum256([]byte(connection + "\x00" + c.Issuer + "\x00" + c.Subject))
	return hex.EncodeToString(sum[:4])
}

// SessionName returns the name a JIT-off session carries (Remote-User,
// {http.auth.user.id}), or "" when no template gives one. Nothing
// stores it, so no store can check it is unique; the rule makes it so:
//
//   - the user's verified email, as it is: a verified email names the
//     owner of one mailbox, the same person on every connection, JIT on
//     or off;
//   - any other result is qualified by the connection,
//     "<connection>:<value>", with the value kept byte for byte
//     (escapeQualified), so it never equals a local username (which has
//     no ':'), another connection's name, or another value's name;
//   - a result with '@' that is not the verified email is skipped, so an
//     email-shaped name always is a verified email.
//
// The default templates are {verified_email}, then {subject}: the
// subject is the one identifier a provider never gives another user. A
// template over a claim users choose or providers reuse (a login such as
// preferred_username) names whoever has that value now.
func (p *Policy) SessionName(connection string, c Claims, pr Profile) string {
	return p.sessionName(connection, c, pr, nil)
}

// sessionName is SessionName; emailFree, when set, vets the verified
// email before it is the name: when it says no, the next template is
// tried.
func (p *Policy) sessionName(connection string, c Claims, pr Profile, emailFree func(string) bool) string {
	env := newEvalEnv(connection, c)
	env.profile = &pr
	templates := p.UsernameTemplates
	if len(templates) == 0 {
		templates = defaultSessionTemplates
	}
	email := verifiedEmailName(pr)
	for _, t := range templates {
		v := t.eval(env)
		norm := NormalizeUsername(v)
		if norm == "" {
			continue
		}
		if strings.Contains(norm, "@") {
			if email != "" && cleanUsername(v) == email && !p.reserved(email) && (emailFree == nil || emailFree(email)) {
				return email
			}
			continue
		}
		// No reserved-name check here: a qualified name is never
		// "admin" or "root", whatever the value.
		if q := escapeQualified(v); len(q) <= MaxUsernameLength {
			return connection + QualifierSeparator + q
		}
	}
	return ""
}

// RolesFor returns the roles the policy's rules grant for these groups.
func (p *Policy) RolesFor(groups []string) []string {
	var out []string
	for _, r := range p.Roles {
		if len(r.FromGroups) == 0 || slices.ContainsFunc(r.FromGroups, func(g string) bool { return slices.Contains(groups, g) }) {
			out = append(out, r.Role)
		}
	}
	return sortedUnique(out)
}

// CheckChosenUsername normalises a username the user with profile pr
// typed and checks it against the pattern and the reserved names, and
// the rules every local username meets whatever the pattern allows: no
// ':' (reserved for JIT-off names qualified by their connection), and
// '@' only in the user's own verified email. It does not look at the
// store: taking the name is CreateUser's atomic job.
func (p *Policy) CheckChosenUsername(s string, pr Profile) (string, error) {
	norm := cleanUsername(s)
	if norm == "" || norm != NormalizeUsername(s) {
		return "", fmt.Errorf("%w: use letters, digits, '.', '_' or '-'", ErrUsernameInvalid)
	}
	if strings.Contains(norm, QualifierSeparator) || strings.Contains(norm, EscapeMark) {
		return "", fmt.Errorf("%w: ':' and '%%' are reserved for names qualified by their sign-in option", ErrUsernameInvalid)
	}
	if norm != plainName(norm) {
		// Whatever the pattern allows: a name is one plain path segment
		// and no markup, as template names are (usernameCandidates).
		return "", fmt.Errorf("%w: a name cannot contain '/', '\\', '<' or '>', nor start with '.'", ErrUsernameInvalid)
	}
	if strings.Contains(norm, "@") && norm != verifiedEmailName(pr) {
		return "", fmt.Errorf("%w: a name with '@' must be your own verified email address", ErrUsernameInvalid)
	}
	re := p.usernameRE
	if re == nil {
		re = regexp.MustCompile(DefaultUsernamePattern)
	}
	if !re.MatchString(norm) {
		if re.String() == DefaultUsernamePattern {
			return "", fmt.Errorf("%w: use 2 to 32 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", ErrUsernameInvalid)
		}
		return "", fmt.Errorf("%w: it must match %s", ErrUsernameInvalid, re.String())
	}
	if p.reserved(norm) {
		return "", fmt.Errorf("%w: %q is reserved", ErrUsernameInvalid, norm)
	}
	if p.fallbackShaped("", norm) {
		return "", fmt.Errorf("%w: this name has the shape of the names this site gives by itself (beginning as a sign-in option's own names do, such as its name and '-', or ending in '-' and 8 hex digits); choose another", ErrUsernameInvalid)
	}
	return norm, nil
}

// SuggestUsername is the name a username page offers: the first of the
// templates' name, the email's local part and the preferred username
// that the user could choose as it is, or "" when none could.
func (p *Policy) SuggestUsername(connection string, c Claims, pr Profile) string {
	local, _, _ := strings.Cut(pr.Email, "@")
	for _, candidate := range []string{p.Username(connection, c, pr), local, pr.PreferredUsername} {
		if norm, err := p.CheckChosenUsername(candidate, pr); err == nil {
			return norm
		}
	}
	return ""
}
