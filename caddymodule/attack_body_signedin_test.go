package caddymodule_test

import (
	"net/http"
	"testing"
)

// In the README's `handle @danger` layout (@danger method DELETE PUT), a
// signed-in user's ordinary multipart form POST — a checkout form with a
// payment_method field, or an uploaded text file that contains the word
// "method" — names no method to any framework (Go, PHP and Rack all read
// the part names plainly), yet the new multipart heuristic counts every
// "method" in the body, finds one that is not a _method part name, calls
// the body unsure, and the site's cleaning step refuses the POST with
// 400 before any session is looked at. The user is signed in; nothing
// they can do gets the form through.
func TestSignedInMultipartMentioningMethodIsNotRefused(t *testing.T) {
	base, _, login := partialSite(t, "\t@danger method DELETE PUT\n\thandle @danger {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}")
	session := login()
	for name, body := range map[string]string{
		"a payment_method field": mpPart("XyZ", `Content-Disposition: form-data; name="payment_method"`, "card") + "--XyZ--\r\n",
		"an uploaded file mentioning method": mpPart("XyZ", "Content-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\nContent-Type: text/plain",
			"The scientific method, step by step.") + "--XyZ--\r\n",
	} {
		status := sendBody(t, base, http.MethodPost, "/orders", "multipart/form-data; boundary=XyZ", body, session)
		if status != http.StatusOK {
			t.Errorf("%s: a signed-in user's multipart POST /orders (a POST to every framework): %d, want 200 from the upstream", name, status)
		}
	}
}
