package caddymodule_test

import (
	"context"
	"net/http"
	"testing"
)

// Review r2 (identity and JIT provisioning): findings against S15 "one
// person, one name" and the README's "one person, one name" section,
// through a real Caddy, the mockoidc provider and a real SQLite file.

// Finding: the last-resort name {connection}-{subject} can be taken
// first by someone else's provider-chosen claim, locking its owner out.
//
// Attack: the victim's subject at the provider is known (numeric IDs,
// the JIT-off names "partner:<subject>" upstreams log, GitHub's public
// user IDs). Before the victim's first login, the attacker signs in
// through corp (JIT on, default templates) with preferred_username
// "corp-<victim subject>" (or chooses that name on a `mode username`
// connection).
//
// Today: the attacker's preferred_username is free, so it becomes the
// attacker's local username. The victim, whose provider sends no
// verified email and no preferred_username (or one that is taken), has
// only {connection}-{subject} left; it is taken, and every login of the
// victim ends on the "account conflict" page, for good.
//
// Should: a provider-chosen claim never yields a name another identity
// could get (the brief's rule); the subject fallback, the one name
// built from what a provider never gives anyone else, is either out of
// reach of templates over chosen claims (e.g. names shaped
// "<connection>-…" refused from preferred_username and chosen names) or
// made unique when taken, so the victim signs in.
//
// Severity: low. A targeted, permanent denial of sign-in that needs the
// victim's subject and to act before their first login.
func TestReviewR2SubjectFallbackCannotBeSquatted(t *testing.T) {
	s := startIdentitySite(t)
	if got := loginAs(s, "corp", person("attacker-sub", "", false, "corp-victim-sub"), ""); got.status != http.StatusOK {
		t.Fatalf("attacker: %d\n%s", got.status, got.body)
	}
	got := loginAs(s, "corp", person("victim-sub", "", false, ""), "")
	if got.status != http.StatusOK || got.user == "" {
		t.Errorf("victim (subject victim-sub, no email, no preferred_username) after an attacker took corp-victim-sub: %d, Remote-User %q; want a name of their own\n%s",
			got.status, got.user, firstLine(got.body))
	}
}

// Finding: template names over provider-chosen claims may be Unicode
// look-alikes of another user's name, which chosen names may not be.
//
// Attack: "alice" exists. Mallory sets her preferred_username at the
// provider to "\u0430lice" (Cyrillic a), "partner\ua789alice-sub"
// (U+A789, a colon look-alike that NFKC does not fold) or "adm\u0131n"
// (dotless i; "admin" is reserved) and signs in through corp (silent,
// default templates).
//
// Today: each becomes Mallory's local username and reaches the upstream
// as Remote-User: a name that reads as "alice", as the JIT-off name
// partner:alice-sub, or as the reserved "admin" to every admin and user
// of the upstream. (Accented names go further in upstreams with
// accent-insensitive collations, MySQL's utf8mb4_0900_ai_ci or
// *_general_ci, where 'alicé' = 'alice'.) The same person on a
// `mode username` connection could not choose any of these: chosen names
// are "plain ASCII so no name is a look-alike of another" (README, mode
// username), and the reserved list exists because upstreams treat those
// names as special.
//
// Should: a name from a template over a provider-chosen claim meets the
// same look-alike rule as a chosen one (e.g. the connection's
// username_pattern, ASCII by default; or a UTS #39 confusable-skeleton
// check against existing names), else falls through to the next
// template (corp-<subject>).
//
// Severity: medium. Impersonation in every upstream UI, and account
// confusion in upstreams whose user tables fold accents, by a claim the
// attacker sets freely.
func TestReviewR2TemplateNameNoLookAlike(t *testing.T) {
	s := startIdentitySite(t)
	if got := loginAs(s, "corp", person("alice-sub", "", false, "alice"), ""); got.user != "alice" {
		t.Fatalf("alice: %d %q\n%s", got.status, got.user, got.body)
	}
	for i, preferred := range []string{"\u0430lice", "partner\ua789alice-sub", "adm\u0131n"} {
		got := loginAs(s, "corp", person("mallory-"+string(rune('a'+i)), "", false, preferred), "")
		if got.status != http.StatusOK {
			t.Fatalf("%q: %d\n%s", preferred, got.status, got.body)
		}
		if got.user != "corp-mallory-"+string(rune('a'+i)) {
			t.Errorf("preferred_username %q (a look-alike of alice, partner:alice-sub or admin) reached the upstream as %q; want the subject fallback", preferred, got.user)
		}
	}
}

// Finding: with JIT off, the check that the verified email still names
// the local user who holds it folds Unicode, where every other email
// comparison compares up to ASCII letter case only.
//
// Attack: Kate signs in through corp (JIT on) with the verified address
// kate@example.com, which becomes her username. Her address at the
// provider later changes to "\u212Aate@example.com" (Kelvin sign; by the
// README "another mailbox"), and she signs in again: the store now has
// that address as her verified email. Someone else, now the owner of
// kate@example.com, signs in through partner (JIT off).
//
// Today: notStored compares NormalizeUsername(kate's stored email) with
// the address: NFKC folds the Kelvin sign to "k", the two are "equal",
// Kate is taken as still holding the address, and the other person's
// session is named "kate@example.com", Kate's local username, and is
// even tied to Kate's account status (Holder).
//
// Should: as README says ("If their email has since changed, the address
// may be someone else's now: the login takes the next template's name")
// and as linking and the allow rules do, compare up to ASCII letter case:
// the other person is "partner:other-sub".
//
// Severity: low. Needs a provider that verifies a Kelvin-sign (or other
// NFKC-folding) address; then two people share one name.
func TestReviewR2JITOffHolderCheckNoUnicodeFolding(t *testing.T) {
	s := startIdentitySite(t)
	st := openStore(t, s.dir)
	if got := loginAs(s, "corp", person("kate-sub", "kate@example.com", true, ""), ""); got.user != "kate@example.com" {
		t.Fatalf("kate: %d %q\n%s", got.status, got.user, got.body)
	}
	// Kate's address changes at the provider; the next login syncs it.
	if got := loginAs(s, "corp", person("kate-sub", "\u212Aate@example.com", true, ""), ""); got.user != "kate@example.com" {
		t.Fatalf("kate, second login: %d %q\n%s", got.status, got.user, got.body)
	}
	k, err := st.UserByUsername(context.Background(), "kate@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if k.Email != "\u212Aate@example.com" || !k.EmailVerified {
		t.Fatalf("kate's stored email %q verified %v; want the Kelvin-sign address, verified", k.Email, k.EmailVerified)
	}
	got := loginAs(s, "partner", person("other-sub", "kate@example.com", true, ""), "")
	if got.user != "partner:other-sub" {
		t.Errorf("another person with verified kate@example.com through partner (JIT off), after Kate's address changed to %+q: Remote-User %q; want partner:other-sub, not Kate's name",
			k.Email, got.user)
	}
}
