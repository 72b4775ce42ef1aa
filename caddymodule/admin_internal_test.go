package caddymodule

import (
	"encoding/json"
	"testing"
)

// FuzzCheckJSONKeys: checkJSONKeys never panics, and a body it accepts
// that encoding/json reads as an object has each top-level key once,
// spelt as a field.
func FuzzCheckJSONKeys(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"set":{"a":"b"},"grant_roles":["x"]}`, `{"set":{"a":"1","a":"2"}}`,
		`{"GRANT_ROLES":[]}`, `[{"a":1},{"a":1}]`, `{"a":[{"b":{"c":[1,{"d":2}]}}]}`, `}{`, `{"set":`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkJSONKeys(body, userChangeFields) != nil {
			return
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) != nil {
			return
		}
		for k := range top {
			if k != "set" && k != "grant_roles" && k != "revoke_roles" {
				t.Fatalf("accepted %q with the key %q", body, k)
			}
		}
	})
}
