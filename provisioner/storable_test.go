package provisioner

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStorableClaims(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"sub":"s","name":"Ann"}`, `{"sub":"s","name":"Ann"}`}, // as it is, bytes and order
		{`{"name":"Nu\u0000l","x\u0000":["a\u0000b",1.50]}`, `{"name":"Nul","x":["ab",1.50]}`},
		{"{\"name\":\"\xff\"}", "{\"name\":\"\ufffd\"}"},
		// Not a JSON object: kept as text, in one that every store takes.
		{`not json \u0000`, `{"raw":"not json \\u0000"}`},
		{"<saml:Assertion>\x00</saml:Assertion>", `{"raw":"\u003csaml:Assertion\u003e\u003c/saml:Assertion\u003e"}`},
		// What PostgreSQL's jsonb refuses and Go reads: a lone surrogate
		// (U+FFFD), a number beyond float64 (its text).
		{`{"name":"Ann \ud800"}`, `{"name":"Ann �"}`},
		{`{"pair":"\ud83d\ude00","n":1}`, `{"n":1,"pair":"😀"}`},
		{`{"score":1e200000}`, `{"score":"1e200000"}`},
		{`{"tiny":1E-20000,"zero":0.0e5}`, `{"tiny":"1E-20000","zero":0.0e5}`},
		{`["a"]`, `{"raw":"[\"a\"]"}`},
		{`{"a":1} {"b":2}`, `{"raw":"{\"a\":1} {\"b\":2}"}`},
	} {
		if got := storableClaims([]byte(tt.in)); string(got) != tt.want {
			t.Errorf("storableClaims(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzStorableClaims: what storableClaims returns for valid JSON is valid
// UTF-8 JSON without NUL, and the same document but for the NULs; for
// anything else, a JSON object too (every store takes it).
func FuzzStorableClaims(f *testing.F) {
	f.Add([]byte(`{"sub":"s","name":"Nu\u0000l","a":[1,"\u0000",{"k\u0000":true}]}`))
	f.Add([]byte("{\"n\":\"\xc3\"}"))
	f.Add([]byte("<xml>\x00\xff</xml>"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) == 0 {
			return
		}
		out := storableClaims(raw)
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("storableClaims(%q) = %q: not a JSON object: %v", raw, out, err)
		}
		if !utf8.Valid(out) || strings.Contains(fmt.Sprint(got), "\x00") {
			t.Fatalf("storableClaims(%q) = %q: invalid UTF-8 or a NUL left", raw, out)
		}
		var in any
		if json.Unmarshal(raw, &in) != nil {
			return
		}
		if _, object := in.(map[string]any); !object {
			return
		}
		if want, _ := storableValue(in); !reflect.DeepEqual(any(got), want) && !strings.Contains(string(raw), `\u0000`) {
			t.Fatalf("storableClaims(%q) = %q, another document", raw, out)
		}
	})
}

func TestProfileStorable(t *testing.T) {
	for _, email := range []string{strings.Repeat("a", 250) + "@example.com", "bob\x00@example.com"} {
		pr := Profile{Email: email, EmailVerified: true}
		pr.storable()
		if pr.Email != "" {
			t.Errorf("email %q: kept, want none (too long, or cleaned another address)", email)
		}
	}
	var u User
	pr := Profile{Name: "N\x00ame", Attributes: map[string]string{"x": "\x00y"}}
	pr.writeTo(&u, nil)
	if u.Name != "Name" || u.Attributes["x"] != "y" {
		t.Errorf("written without NUL: name %q, attributes %v", u.Name, u.Attributes)
	}
}
