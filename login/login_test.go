package login

import (
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The rule, case by case: asking wins over everything, a refusal over
// the second factor, and the second factor needs a local user.
func TestNextCases(t *testing.T) {
	for _, c := range []struct {
		name string
		f    Facts
		want Step
	}{
		{"consent asked even when the rules would refuse", Facts{Outcome: provisioner.OutcomeNeedsConsent}, Ask},
		{"refused before the second factor", Facts{Outcome: provisioner.OutcomeCreated, MFARequired: true, Provisioned: true}, Deny},
		{"JIT off with MFA required", Facts{Outcome: provisioner.OutcomeNotStored, Allowed: true, MFARequired: true}, NoLocalUser},
		{"JIT off without MFA", Facts{Outcome: provisioner.OutcomeNotStored, Allowed: true}, SignIn},
		{"second factor", Facts{Outcome: provisioner.OutcomeUpdated, Allowed: true, MFARequired: true, Provisioned: true}, SecondFactor},
		{"username asked before a refusal", Facts{Outcome: provisioner.OutcomeNeedsUsername, MFARequired: true}, Ask},
		{"refused without a local user", Facts{Outcome: provisioner.OutcomeNotStored, MFARequired: true}, Deny},
		{"signed in", Facts{Outcome: provisioner.OutcomeCreated, Allowed: true, Provisioned: true}, SignIn},
		{"linked, no second factor", Facts{Outcome: provisioner.OutcomeLinked, Allowed: true, Provisioned: true}, SignIn},
	} {
		if got := Next(c.f); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
