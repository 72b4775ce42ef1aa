package caddymodule

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/securecookie"
)

func TestCompactJSON(t *testing.T) {
	// A payload that fits is sealed as plain JSON, byte for byte as
	// before, so earlier versions still open it.
	small := &Session{ID: "s1", Username: "alice", Groups: []string{"staff", "wonderland"}, Connection: "corp"}
	plain, _ := securecookie.JSONEncoder{}.Serialize(small)
	got, err := compactJSON{}.Serialize(small)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("small payload: %q, %v; want the plain JSON %q", got, err, plain)
	}

	big := &Session{ID: "s2", Username: "grace", Connection: "corp"}
	for i := range 200 {
		big.Groups = append(big.Groups, fmt.Sprintf("/acme/engineering/team-%03d", i))
	}
	packed, err := compactJSON{}.Serialize(big)
	if err != nil || packed[0] != compactMark || len(packed) > compactAbove {
		t.Fatalf("large payload: %d bytes starting %q, %v; want it compressed below %d", len(packed), packed[:1], err, compactAbove)
	}
	var back Session
	if err := (compactJSON{}).Deserialize(packed, &back); err != nil || !slices.Equal(back.Groups, big.Groups) || back.ID != "s2" {
		t.Fatalf("round trip: %v, %d groups", err, len(back.Groups))
	}
	// Both kinds open with one codec, through securecookie.
	sc := securecookie.New(bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32))
	sc.SetSerializer(compactJSON{})
	sc.MaxLength(maxCookieLength)
	for _, s := range []*Session{small, big} {
		v, err := sc.Encode("jitauth_session", s)
		if err != nil {
			t.Fatalf("encoding %s: %v", s.ID, err)
		}
		var d Session
		if err := sc.Decode("jitauth_session", v, &d); err != nil || d.ID != s.ID || len(d.Groups) != len(s.Groups) {
			t.Errorf("decoding %s: %v", s.ID, err)
		}
	}

	// What a compressed payload opens to is bounded.
	var bomb bytes.Buffer
	bomb.WriteByte(compactMark)
	zw, _ := flate.NewWriter(&bomb, flate.BestCompression)
	zw.Write([]byte(`{"sid":"` + strings.Repeat("a", maxInflated) + `"}`))
	zw.Close()
	if err := (compactJSON{}).Deserialize(bomb.Bytes(), &back); !errors.Is(err, errInflatedTooLarge) {
		t.Errorf("a payload opening to more than %d bytes: %v, want errInflatedTooLarge", maxInflated, err)
	}
	if err := (compactJSON{}).Deserialize([]byte{compactMark, 0xff, 0x00}, &back); err == nil {
		t.Error("a corrupt compressed payload opened")
	}
}

// FuzzCompactJSON: any payload (after the MAC, so only a key holder's,
// but parsed all the same) opens or fails without a panic, and whatever
// a session serializes to opens to the same session.
func FuzzCompactJSON(f *testing.F) {
	f.Add([]byte(`{"sid":"x","g":["a"]}`), "a")
	big := &Session{ID: "s"}
	for i := range 200 {
		big.Groups = append(big.Groups, fmt.Sprintf("/acme/team-%03d", i))
	}
	packed, _ := compactJSON{}.Serialize(big)
	f.Add(packed, "/acme/team-")
	f.Add([]byte{compactMark, 0x01, 0x00, 0x00, 0xff, 0xff}, "")
	f.Fuzz(func(t *testing.T, payload []byte, group string) {
		var s Session
		_ = compactJSON{}.Deserialize(payload, &s)

		if !utf8.ValidString(group) {
			return // JSON itself writes invalid UTF-8 as U+FFFD
		}
		in := &Session{ID: "s", Groups: []string{group, group + "2"}}
		b, err := compactJSON{}.Serialize(in)
		if j, _ := json.Marshal(in); errors.Is(err, errInflatedTooLarge) && len(j) > maxInflated {
			return // too large to open, so not sealed
		}
		if err != nil {
			t.Fatal(err)
		}
		var out Session
		if err := (compactJSON{}).Deserialize(b, &out); err != nil || !slices.Equal(out.Groups, in.Groups) {
			t.Fatalf("round trip of %q: %v, %q", group, err, out.Groups)
		}
	})
}

// What Deserialize would refuse to open is not sealed: a cookie the next
// request cannot open sends the browser to sign in again, and again.
func TestCompactJSONSealsOnlyWhatOpens(t *testing.T) {
	for _, n := range []int{maxInflated - 1024, maxInflated + 1} {
		in := &Session{ID: "s", Name: strings.Repeat("N", n)}
		b, err := compactJSON{}.Serialize(in)
		if n > maxInflated {
			if !errors.Is(err, errInflatedTooLarge) {
				t.Errorf("a %d-byte name: sealed (%d bytes, %v), though it would not open", n, len(b), err)
			}
			continue
		}
		var out Session
		if err != nil || (compactJSON{}).Deserialize(b, &out) != nil || out.Name != in.Name {
			t.Errorf("a %d-byte name: %v, or it does not open again", n, err)
		}
	}
}
