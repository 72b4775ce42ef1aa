package caddymodule_test

import (
	"strings"
	"testing"
)

// deprovision { after 3m } is three minutes, not months: nearly every
// user is inactive that long. It loads (tests and trials use seconds),
// with a warning that says how durations are written.
func TestDeprovisionAfterUnderADayIsWarnedAbout(t *testing.T) {
	s := startSiteOpts(t, siteOptions{auditLog: true,
		corpExtra: "deprovision {\n\t\t\t\tafter 3m\n\t\t\t\taction disable\n\t\t\t}"})
	log := mustReadFile(t, s.logFile())
	if !strings.Contains(log, "deprovisioning users inactive for less than a day") || !strings.Contains(log, `"after":180`) && !strings.Contains(log, `"after":"3m0s"`) {
		t.Fatalf("no warning naming the duration at load:\n%s", log)
	}
}
