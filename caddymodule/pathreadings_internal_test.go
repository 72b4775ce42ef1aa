package caddymodule

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestOtherReadings(t *testing.T) {
	for _, c := range []struct {
		escaped string
		want    []string
	}{
		{"/admin/x", nil},
		{"/style.css", []string{"/style.css"}},
		{"/admin;jsessionid=1/x", []string{"/admin/x"}},
		{`/admin\x`, []string{"/admin/x"}},
		{"/admin%5Cx", []string{"/admin/x"}},
		{"/admin.%20/x", []string{"/admin/x"}},
		{"/public/..;/admin", []string{"/admin", "/public/_/admin"}},
		{"/a/%252e%252e/b", []string{"/b", "/a/_/b"}},
		{"//admin/x", []string{"/admin/x"}},
		{"/admin/x/", nil},
		{"/admin;x/", []string{"/admin/"}},
		{"/admin%00/x", []string{"/admin", "/admin/x"}},
		{"/a%0a/b", []string{"/a/b"}},
		{"/bad%zz", []string{"/bad%zz"}},
	} {
		if got := otherReadings(c.escaped); !slices.Equal(got, c.want) {
			t.Errorf("otherReadings(%q) = %q, want %q", c.escaped, got, c.want)
		}
	}
}

// FuzzOtherReadings: any request path is read without a panic, and no
// reading keeps what an upstream would read otherwise again.
func FuzzOtherReadings(f *testing.F) {
	for _, s := range []string{"/admin/x", "/public/..;/admin", `/a\b`, "/a%00b", "/%252e%252e/", "/a.%20/b", "/%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, escaped string) {
		readings := otherReadings(escaped)
		if !strings.ContainsAny(escaped, `;\%.`) && !strings.Contains(escaped, "//") && readings != nil {
			t.Fatalf("%q has nothing to read otherwise, got %q", escaped, readings)
		}
		// differentReadings skips such paths without reading them: each
		// of their readings must be the path itself. It gets paths as
		// URL.EscapedPath gives them (no raw spaces or control
		// characters), which is what the condition first asks.
		asSent := (&url.URL{Path: escaped}).EscapedPath() == escaped
		if asSent && readsAlike(escaped) {
			for _, r := range readings {
				if r != escaped {
					t.Fatalf("%q is skipped as read alike, but reads as %q", escaped, r)
				}
			}
		}
		for _, r := range readings {
			if strings.ContainsAny(r, "\\\x00") {
				t.Fatalf("reading %q of %q keeps a backslash or NUL", r, escaped)
			}
			for _, seg := range strings.Split(r, "/") {
				if strings.Contains(seg, ";") || seg != "." && seg != ".." && strings.TrimRight(seg, ". ") != seg {
					t.Fatalf("reading %q of %q keeps a segment %q an upstream reads otherwise", r, escaped, seg)
				}
			}
		}
	})
}

func TestPathOverrides(t *testing.T) {
	for _, c := range []struct {
		header http.Header
		want   []string
	}{
		{http.Header{"Accept": {"*/*"}}, nil},
		{http.Header{"X-Original-Url": {"/admin/x?a=b"}}, []string{"/admin/x"}},
		{http.Header{"X_rewrite_url": {" https://h.test/admin#f "}}, []string{"/admin"}},
		{http.Header{"X.Original.Url": {"admin"}}, []string{"/admin"}},
		{http.Header{"X-Original-Url": {"https://h.test"}}, []string{"/"}},
		{http.Header{"X-Forwarded-Uri": {"/admin"}}, nil},
	} {
		if got := pathOverrides(c.header); !slices.Equal(got, c.want) {
			t.Errorf("pathOverrides(%v) = %q, want %q", c.header, got, c.want)
		}
	}
}

// FuzzPathOverrides: any field value gives a path, without a panic, that
// carries no query or fragment, and its readings are made without one;
// as a method override, it gives a method or nothing.
func FuzzPathOverrides(f *testing.F) {
	for _, s := range []string{"/admin/x?a=b", "https://h.test/admin#f", "admin", "", "://", "/a%zz;/b\\c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		paths := pathOverrides(http.Header{"X-Original-Url": {v}})
		if len(paths) != 1 {
			t.Fatalf("%q gave %d paths", v, len(paths))
		}
		p := paths[0]
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#") {
			t.Fatalf("%q gave %q", v, p)
		}
		r := &http.Request{URL: &url.URL{Path: "/"}, Header: http.Header{"X-Original-Url": {v}}}
		_ = differentReadings(r)

		// The same value as a method override, in the field and the
		// query: what comes back is a short upper-case method, not the
		// request's own.
		r = &http.Request{Method: "POST", URL: &url.URL{Path: "/", RawQuery: "_method=" + url.QueryEscape(v)},
			Header: http.Header{"X-Http-Method-Override": {v}}}
		for _, m := range methodOverrides(r) {
			if m == "" || m == "POST" || len(m) > 20 || m != strings.ToUpper(m) {
				t.Fatalf("override %q read as method %q", v, m)
			}
		}
	})
}

func TestOtherHost(t *testing.T) {
	for in, want := range map[string]string{
		"admin.test":          "",
		"admin.test.":         "admin.test",
		"admin.test..:8443":   "admin.test:8443",
		"admin.test:8443":     "",
		".":                   "",
		"[::1]:80":            "",
		"[::1]":               "",
		"":                    "",
		"localhost.:2015":     "localhost:2015",
		"127.0.0.1.":          "127.0.0.1",
		"xn--bcher-kva.test.": "xn--bcher-kva.test",
	} {
		if got := otherHost(in); got != want {
			t.Errorf("otherHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzOtherHost: any Host field reads without a panic, and its other
// reading, if any, is the same field with dots taken from the end of
// its name.
func FuzzOtherHost(f *testing.F) {
	for _, s := range []string{"admin.test.", "admin.test..:8443", "[::1]:80", ".", ":", "a.:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		o := otherHost(host)
		if o == "" {
			return
		}
		// Only dots go.
		if strings.ReplaceAll(o, ".", "") != strings.ReplaceAll(host, ".", "") || len(o) >= len(host) {
			t.Fatalf("otherHost(%q) = %q", host, o)
		}
	})
}

func TestMethodOverrides(t *testing.T) {
	mk := func(method, target string, hdr http.Header) *http.Request {
		r, _ := http.NewRequest(method, target, nil)
		for k, v := range hdr {
			r.Header[k] = v
		}
		return r
	}
	for _, c := range []struct {
		r    *http.Request
		want []string
	}{
		{mk("POST", "/x", nil), nil},
		{mk("POST", "/x", http.Header{"X-Http-Method-Override": {" delete "}}), []string{"DELETE"}},
		{mk("POST", "/x?_method=put&_method=PUT", nil), []string{"PUT"}},
		{mk("POST", "/x", http.Header{"X_http_method": {"PATCH"}, "X-Method-Override": {"patch"}}), []string{"PATCH"}},
		{mk("POST", "/x", http.Header{"X-Http-Method-Override": {"POST"}}), nil},
		{mk("POST", "/x", http.Header{"X-Http-Method-Override": {strings.Repeat("A", 21)}}), nil},
		{mk("POST", "/x?a_method=put", nil), nil},
		{mk("POST", "/x?%5Fmethod=put", nil), []string{"PUT"}},
		{mk("POST", "/x?.method=put&a=1", nil), []string{"PUT"}},
		{mk("POST", "/x?_method%00x=put", nil), []string{"PUT"}},
		{mk("POST", "/x?a=1;_method=put", nil), []string{"PUT"}},
		{mk("delete", "/x", nil), []string{"DELETE"}},
		{mk("Post", "/x", http.Header{"X-Http-Method-Override": {"put"}}), []string{"POST", "PUT"}},
		{mk("HEAD", "/x", nil), []string{"GET"}},
		{mk("head", "/x", nil), []string{"HEAD", "GET"}},
		{mk("GET", "/x", nil), nil},
		{mk("OPTIONS", "/x", nil), nil},
	} {
		if got := methodOverrides(c.r); !slices.Equal(got, c.want) {
			t.Errorf("%s %s %v: %q, want %q", c.r.Method, c.r.URL, c.r.Header, got, c.want)
		}
	}
}

// An ordinary request has no other reading: try is not called, and
// nothing is allocated (a jit_auth matcher asks for every request it
// leaves alone).
func TestOrdinaryRequestsAreNotReadAgain(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "http://app.test/public/style.css?v=3", nil)
	r.Header.Set("Accept", "text/css")
	r.Header.Set("Cookie", "a=b")
	calls := 0
	try := func(*http.Request) (bool, error) { calls++; return false, nil }
	if allocs := testing.AllocsPerRun(100, func() { _, _ = eachOtherReading(r, try) }); allocs != 0 || calls != 0 {
		t.Errorf("an ordinary request: %v allocations, try called %d times; want none", allocs, calls)
	}
	r.Header.Set("X-Http-Method-Override", "DELETE")
	if ok, _ := eachOtherReading(r, func(r *http.Request) (bool, error) { return r.Method == "DELETE", nil }); !ok {
		t.Error("the override's reading was not tried")
	}
	if r.Method != http.MethodGet || r.URL.Path != "/public/style.css" {
		t.Errorf("the request was not put back: %s %s", r.Method, r.URL.Path)
	}
}

// extendedConnectRequest is an Extended CONNECT for protocol as Go's
// HTTP/2 server (major 2) or quic-go's HTTP/3 server (major 3) gives it
// to a handler.
func extendedConnectRequest(major int, protocol string) *http.Request {
	r, _ := http.NewRequest(http.MethodConnect, "https://app.test/chat", nil)
	r.ProtoMajor, r.ProtoMinor = major, 0
	r.Header.Set("Sec-WebSocket-Version", "13")
	switch major {
	case 2:
		r.Proto = "HTTP/2.0"
		r.Header.Set(":protocol", protocol)
	case 3:
		r.Proto = protocol
	}
	return r
}

func TestExtendedConnectProtocol(t *testing.T) {
	plain := func(method, proto string, major int) *http.Request {
		r, _ := http.NewRequest(method, "https://app.test/chat", nil)
		r.Proto, r.ProtoMajor = proto, major
		return r
	}
	lower := extendedConnectRequest(3, "websocket")
	lower.Method = "connect"
	getWithProtocol := extendedConnectRequest(2, "websocket")
	getWithProtocol.Method = http.MethodGet
	for _, c := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"HTTP/2 :protocol", extendedConnectRequest(2, "websocket"), "websocket"},
		{"HTTP/3 Proto", extendedConnectRequest(3, "websocket"), "websocket"},
		{"HTTP/3 other protocol", extendedConnectRequest(3, "connect-udp"), "connect-udp"},
		{"lower-case method", lower, "websocket"},
		{"HTTP/3 CONNECT", plain(http.MethodConnect, "HTTP/3.0", 3), ""},
		{"HTTP/2 CONNECT", plain(http.MethodConnect, "HTTP/2.0", 2), ""},
		{"HTTP/1.1 CONNECT", plain(http.MethodConnect, "HTTP/1.1", 1), ""},
		{"HTTP/3 GET", plain(http.MethodGet, "HTTP/3.0", 3), ""},
		{"GET with a :protocol field", getWithProtocol, ""},
	} {
		if got := extendedConnectProtocol(c.r); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// An HTTP/1.1 upgrade is read again only when a header matcher could read
// it otherwise than reverse_proxy: spelled as browsers spell it, or not an
// upgrade at all, it is not.
func TestUpgradeOf(t *testing.T) {
	get := func(header ...string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "https://app.test/chat", nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Add(header[i], header[i+1])
		}
		return r
	}
	for _, c := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"as browsers spell it", get("Connection", "Upgrade", "Upgrade", "websocket"), ""},
		{"no upgrade", get("Connection", "keep-alive"), ""},
		{"Upgrade without the Connection token", get("Connection", "close", "Upgrade", "websocket"), ""},
		{"lower-case token", get("Connection", "upgrade", "Upgrade", "websocket"), "websocket"},
		{"token in a list", get("Connection", "keep-alive, Upgrade", "Upgrade", "websocket"), "websocket"},
		{"mixed-case protocol", get("Connection", "Upgrade", "Upgrade", "WebSocket"), "websocket"},
		{"two Connection fields", get("Connection", "Upgrade", "Connection", "keep-alive", "Upgrade", "websocket"), "websocket"},
		{"Extended CONNECT", extendedConnectRequest(3, "websocket"), "websocket"},
	} {
		if got := upgradeOf(c.r); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// An Extended CONNECT is read as the GET upgrade reverse_proxy sends for
// it, also with a method it names, and is given back as it was.
func TestExtendedConnectIsReadAsTheUpgradeItStandsFor(t *testing.T) {
	for _, major := range []int{2, 3} {
		r := extendedConnectRequest(major, "websocket")
		r.Header.Set("X-Http-Method-Override", "DELETE")
		before := r.Header.Clone()
		var tried []string
		ok, err := eachOtherReading(r, func(r *http.Request) (bool, error) {
			h := r.Header
			tried = append(tried, r.Method+" Upgrade="+h.Get("Upgrade")+" Connection="+h.Get("Connection"))
			if r.Method == http.MethodGet && (h.Get(":protocol") != "" || h.Get("Sec-WebSocket-Key") == "" || h.Get("Sec-WebSocket-Version") != "13") {
				t.Errorf("HTTP/%d: the GET reading has :protocol %q, Sec-WebSocket-Key %q, Sec-WebSocket-Version %q",
					major, h.Get(":protocol"), h.Get("Sec-WebSocket-Key"), h.Get("Sec-WebSocket-Version"))
			}
			return false, nil
		})
		want := []string{
			"DELETE Upgrade= Connection=",
			"GET Upgrade=websocket Connection=Upgrade",
			"DELETE Upgrade=websocket Connection=Upgrade",
		}
		if ok || err != nil || !slices.Equal(tried, want) {
			t.Errorf("HTTP/%d: tried %q (%v, %v), want %q", major, tried, ok, err, want)
		}
		if r.Method != http.MethodConnect || !reflect.DeepEqual(r.Header, before) {
			t.Errorf("HTTP/%d: the request was not put back: %s %v", major, r.Method, r.Header)
		}
	}
}

// FuzzExtendedConnectReading: whatever protocol an Extended CONNECT
// names, over HTTP/2 or HTTP/3, it is read as GET with that Upgrade and
// Connection: Upgrade, without a :protocol, and given back unchanged.
func FuzzExtendedConnectReading(f *testing.F) {
	for _, s := range []string{"websocket", "WebSocket", "connect-udp", "webtransport", "HTTP/3.0", ""} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, protocol string, h3 bool) {
		major := 2
		if h3 {
			major = 3
		}
		r := extendedConnectRequest(major, protocol)
		before, proto := r.Header.Clone(), r.Proto
		read := false
		_, _ = eachOtherReading(r, func(r *http.Request) (bool, error) {
			if r.Method == http.MethodGet && r.Header.Get("Upgrade") == protocol &&
				r.Header.Get("Connection") == "Upgrade" && len(r.Header[":protocol"]) == 0 {
				read = true
			}
			return false, nil
		})
		if want := extendedConnectProtocol(r) != ""; read != want {
			t.Fatalf("HTTP/%d :protocol %q: read as the upgrade %v, want %v", major, protocol, read, want)
		}
		if r.Method != http.MethodConnect || r.Proto != proto || !reflect.DeepEqual(r.Header, before) {
			t.Fatalf("HTTP/%d :protocol %q: not given back: %s %s %v", major, protocol, r.Method, r.Proto, r.Header)
		}
	})
}
