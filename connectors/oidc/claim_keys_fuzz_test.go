package oidc

import (
	"encoding/json"
	"testing"
)

// FuzzCheckClaimKeys: whatever claims checkClaimKeys lets through, the
// struct reading (encoding/json's, case-insensitive, the last of several
// keys winning, as go-oidc and VerifyLogoutToken read) and the map
// reading (exact keys, what mappings and {claims.*} read) say the same of
// every claim read into a struct. A key spelled otherwise or given twice
// that slipped through would make them disagree.
func FuzzCheckClaimKeys(f *testing.F) {
	for _, seed := range []string{
		`{"sub":"alice","iss":"https://idp"}`,
		`{"Sub":"mallory","sub":"alice"}`,
		`{"sub":"alice","Sub":"mallory"}`,
		`{"ſub":"mallory","sub":"alice"}`,
		`{"sub":"alice","sub":"mallory"}`,
		`{"sid":"s1","SID":"s2","events":{"x":{}}}`,
		`{"jti":"j","Events":{},"events":{}}`,
		`{"nested":{"Sub":"x","sub":"y"},"sub":"alice"}`,
		`{"sub":"a\u017fb"}`,
		`[]`, `{`, `{"sub":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := checkClaimKeys(raw, logoutTokenClaims); err != nil {
			return
		}
		var byMap map[string]json.RawMessage
		if err := json.Unmarshal(raw, &byMap); err != nil {
			return // not claims at all; claimsOf refuses it next
		}
		// Every claim read into a struct, read the way a struct reads it.
		var byStruct struct {
			Iss          json.RawMessage `json:"iss"`
			Sub          json.RawMessage `json:"sub"`
			Aud          json.RawMessage `json:"aud"`
			Exp          json.RawMessage `json:"exp"`
			Iat          json.RawMessage `json:"iat"`
			Nbf          json.RawMessage `json:"nbf"`
			Nonce        json.RawMessage `json:"nonce"`
			AtHash       json.RawMessage `json:"at_hash"`
			Azp          json.RawMessage `json:"azp"`
			Sid          json.RawMessage `json:"sid"`
			Amr          json.RawMessage `json:"amr"`
			Jti          json.RawMessage `json:"jti"`
			Events       json.RawMessage `json:"events"`
			ClaimNames   json.RawMessage `json:"_claim_names"`
			ClaimSources json.RawMessage `json:"_claim_sources"`
		}
		if err := json.Unmarshal(raw, &byStruct); err != nil {
			t.Fatalf("accepted claims %q that a struct cannot read: %v", raw, err)
		}
		for name, got := range map[string]json.RawMessage{
			"iss": byStruct.Iss, "sub": byStruct.Sub, "aud": byStruct.Aud, "exp": byStruct.Exp, "iat": byStruct.Iat,
			"nbf": byStruct.Nbf, "nonce": byStruct.Nonce, "at_hash": byStruct.AtHash, "azp": byStruct.Azp,
			"sid": byStruct.Sid, "amr": byStruct.Amr, "jti": byStruct.Jti, "events": byStruct.Events,
			"_claim_names": byStruct.ClaimNames, "_claim_sources": byStruct.ClaimSources,
		} {
			if string(got) != string(byMap[name]) {
				t.Fatalf("accepted claims %q: a struct reads %s as %s, the map as %s", raw, name, got, byMap[name])
			}
		}
	})
}
