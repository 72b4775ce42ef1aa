package caddymodule

import (
	"mime/multipart"
	"slices"
	"strings"
	"testing"
)

// Go's own strict multipart reading finds a _method part in a body that
// multipartMethods calls sure and empty without reading it (no literal
// "method" in it).
func TestGoReadsExtendedMethodName(t *testing.T) {
	body := "--XyZ\r\nContent-Disposition: form-data; name*=utf-8''%5Fm%65thod\r\n\r\ndelete\r\n--XyZ--\r\n"
	p, err := multipart.NewReader(strings.NewReader(body), "XyZ").NextPart()
	if err != nil {
		t.Fatal(err)
	}
	methods, known := methodsInBody("multipart/form-data; boundary=XyZ", []byte(body))
	if p.FormName() != "_method" {
		t.Fatalf("Go reads the part's name as %q", p.FormName())
	}
	if known && !slices.Contains(methods, "DELETE") {
		t.Errorf("Go's Part.FormName reads %q; methodsInBody says methods %v, known %v: want DELETE or not known", p.FormName(), methods, known)
	}
}
