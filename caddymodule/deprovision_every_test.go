package caddymodule_test

import (
	"fmt"
	"strings"
	"testing"
)

// A deprovision rule's every below 1s (a typo such as "every 1ms") is
// refused when the config loads, as user_status_refresh and
// revocation_poll below 1s are: the sweeper wakes that often, and each
// wake writes the lease and searches the directory, so the store was
// written a thousand times a second.
func TestDeprovisionEveryBelowASecondIsRefused(t *testing.T) {
	dir := t.TempDir()
	config := func(every string) string {
		return fmt.Sprintf("{\n\tadmin off\n\tstorage file_system %[1]s/storage\n\tjit_auth {\n\t\tstore sqlite %[1]s/users.db\n"+
			"\t\tconnection corp {\n oidc https://idp.example a b\n jit\n deprovision {\n after 90d\n every %[2]s\n }\n }\n\t}\n}\nhttp://localhost:1 {\n\tjit_auth\n\trespond ok\n}\n", dir, every)
	}
	for _, every := range []string{"1ms", "1ns", "999ms"} {
		if err := validate(t, config(every)); err == nil || !strings.Contains(err.Error(), "at least 1s") {
			t.Errorf("every %s: err = %v, want one saying to use at least 1s", every, err)
		}
	}
	if err := validate(t, config("1s")); err != nil {
		t.Errorf("every 1s: %v", err)
	}
}
