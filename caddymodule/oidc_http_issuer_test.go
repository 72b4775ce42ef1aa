package caddymodule_test

import (
	"fmt"
	"strings"
	"testing"
)

// An issuer on plain http carries the client secret, the code exchange
// and the keys that verify ID tokens in the clear: on another host than
// this one, loading says so (container networks use it, so it loads).
// On loopback it is the usual development set-up and nothing is said.
func TestPlainHTTPIssuerElsewhereIsWarnedAbout(t *testing.T) {
	for issuer, warned := range map[string]bool{
		"http://idp.internal:8080/realms/corp": true,
		"http://10.0.0.7":                      true,
		"http://localhost:9998":                false,
		"http://127.0.0.1:9998":                false,
		"http://[::1]:9998":                    false,
		"https://idp.example":                  false,
	} {
		t.Run(issuer, func(t *testing.T) {
			dir := t.TempDir()
			logFile := dir + "/caddy.log"
			conns := fmt.Sprintf("connection corp {\n oidc %s a b\n}", issuer)
			caddyfile := fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n\tjit_auth\n\trespond ok\n}\n", globalOptions(dir, conns), freePort(t))
			caddyfile = strings.Replace(caddyfile, "level ERROR", "output file "+logFile+"\n\t\tlevel WARN", 1)
			runCaddyfile(t, caddyfile)
			log := mustReadFile(t, logFile)
			if got := strings.Contains(log, "oidc issuer is plain http"); got != warned {
				t.Fatalf("warned %v, want %v:\n%s", got, warned, log)
			}
		})
	}
}
