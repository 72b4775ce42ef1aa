package caddymodule

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// connectionsOf returns the jit_auth app's connections of a JSON config,
// each as generic JSON.
func connectionsOf(t *testing.T, cfg []byte) map[string]json.RawMessage {
	t.Helper()
	var c struct {
		Apps struct {
			JITAuth struct {
				Connections map[string]json.RawMessage `json:"connections"`
			} `json:"jit_auth"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	return c.Apps.JITAuth.Connections
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// translated is a legacy connection's JSON as it loads: translated to a
// connector, then written again.
func translated(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	var c Connection
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if err := c.translateLegacy(); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	out, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The JSON that Caddyfile.example adapted to before connectors were
// modules ("oidc", "provider" and "scopes" on the connection) loads as
// exactly the connections the example adapts to now: the same connector
// kinds with the same settings, and the connection-level options kept.
func TestLegacyConnectionsLoadAsConnectors(t *testing.T) {
	before, err := os.ReadFile("testdata/Caddyfile.example.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	now, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(example, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatal(err)
	}
	old, cur := connectionsOf(t, before), connectionsOf(t, now)
	if len(old) != len(cur) || len(old) == 0 {
		t.Fatalf("connections before %d, now %d", len(old), len(cur))
	}
	for name, raw := range old {
		if got := translated(t, raw); !sameJSON(t, got, withoutNewOptions(t, cur[name])) {
			t.Errorf("connection %s: the legacy JSON loads as\n%s\nbut the example now adapts to\n%s", name, got, cur[name])
		}
	}
}

// optionsSinceV1 are connection options the example gained after the
// v1 JSON was recorded; the old JSON cannot hold them.
var optionsSinceV1 = []string{"deprovision", "logout_at_provider", "backchannel_logout", "refresh"}

// withoutNewOptions is a connection's JSON without optionsSinceV1.
func withoutNewOptions(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range optionsSinceV1 {
		delete(m, k)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The legacy Caddyfile forms (connector options at the connection
// level, `provider` for goth) adapt to the same connector as the
// connector's own block.
func TestLegacyCaddyfileFormsAdaptAsTheirBlocks(t *testing.T) {
	for _, c := range []struct{ legacy, block string }{
		{"oidc https://idp.example id {env.S}\n scopes openid email", "oidc https://idp.example id {env.S} {\n scopes openid email\n }"},
		{"scopes openid groups\n oidc https://idp.example id {env.S}", "oidc {\n issuer https://idp.example\n client_id id\n client_secret {env.S}\n scopes openid groups\n }"},
		{"provider GitHub k {env.S}\n auth_url https://ghe/a\n token_url https://ghe/t\n profile_url https://ghe/p\n email_url https://ghe/e\n scopes read:user",
			"goth github k {env.S} {\n auth_url https://ghe/a\n token_url https://ghe/t\n profile_url https://ghe/p\n email_url https://ghe/e\n scopes read:user\n }"},
		{"base_url https://okta.example\n provider okta k {env.S}", "goth okta k {env.S} {\n base_url https://okta.example\n }"},
	} {
		adapt := func(body string) json.RawMessage {
			cfg := "{\n\tjit_auth {\n\t\tconnection corp {\n " + body + "\n display_name Corp\n\t\t}\n\t}\n}\nhttp://localhost:1 {\n\tjit_auth\n\trespond ok\n}\n"
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"})
			if err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			return connectionsOf(t, out)["corp"]
		}
		if l, b := adapt(c.legacy), adapt(c.block); !sameJSON(t, l, b) {
			t.Errorf("legacy form\n%s\nadapts to %s;\nits block form\n%s\nto %s", c.legacy, l, c.block, b)
		}
	}
}
