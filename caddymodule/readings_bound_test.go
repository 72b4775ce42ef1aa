package caddymodule_test

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Anyone can send a request with many fields naming another path
// (X-Original-URL) and another method (X-HTTP-Method-Override). Each
// such reading is tried, and on a site whose jit_auth handler has a
// match field and sits in a handle block, the site's cleaning step walks
// the routes for every reading and the handler tries every reading again
// at each walk: 60 fields of each kind, under 4 KiB, took about half a
// minute of CPU, and 100 two minutes (S12: bounded work per anonymous
// request). Past a bound the request is refused unread, as one that
// reads another way is.
func TestManyOverrideFieldsAreRefusedUnread(t *testing.T) {
	base, up, _ := partialSite(t, "\thandle /app/* {\n\t\t@private not path /app/public/*\n\t\tjit_auth @private\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}")
	u, _ := url.Parse(base)
	var fields strings.Builder
	for i := range 60 {
		fmt.Fprintf(&fields, "X-Original-URL: /app/public/%x;\r\nX-HTTP-Method-Override: M%x\r\n", i, i)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := c.Write([]byte("GET /x;y HTTP/1.1\r\nHost: " + u.Host + "\r\n" + fields.String() + "Connection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	status, err := bufio.NewReader(c).ReadString('\n')
	took := time.Since(start)
	if err != nil {
		t.Fatalf("no answer within %v to a request of 120 override fields: %v", took, err)
	}
	if took > 3*time.Second {
		t.Errorf("a request of 120 override fields took %v", took)
	}
	if !strings.Contains(status, " 400 ") {
		t.Errorf("a request of 120 override fields: %q, want 400 (refused unread)", strings.TrimSpace(status))
	}
	if n := up.count(); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}
