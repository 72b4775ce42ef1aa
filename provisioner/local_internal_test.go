package provisioner

import "testing"

// An administrator's new email address is unverified unless the same
// change says otherwise; "new" is what linking by email would tell
// apart, so a Kelvin sign for a "k" makes a new, unverified address.
func TestLocalEmailChangeDropsVerification(t *testing.T) {
	for _, c := range []struct {
		set  map[string]string
		want bool
	}{
		{map[string]string{AttrEmail: "KATE@Example.com"}, true},
		{map[string]string{AttrEmail: "\u212Aate@example.com"}, false},
		{map[string]string{AttrEmail: "other@example.com"}, false},
		{map[string]string{AttrEmail: "other@example.com", AttrEmailVerified: "true"}, true},
	} {
		u := &User{Email: "kate@example.com", EmailVerified: true}
		setLocalAttributes(u, c.set)
		if u.EmailVerified != c.want {
			t.Errorf("set %q on a verified kate@example.com: verified %v, want %v", c.set, u.EmailVerified, c.want)
		}
	}
}
