// Command upstream is the application behind both benchmark contenders:
// it answers every request with the same 64-byte body, over keep-alive
// connections, and counts the requests it serves so that bench/run.sh
// can check that every request wrk counted really reached it (and was not
// answered by jit_auth with a redirect).
//
//	upstream -addr 127.0.0.1:0 -addr-file /tmp/x/upstream.addr
//
// GET /__count returns the number of other requests served so far, GET
// /__conns the number of TCP connections accepted so far (so run.sh can
// tell how well a proxy reuses its upstream connections); both are meant
// to be asked directly, not through a proxy. GET /__headers, asked through
// a proxy, lists the header fields the proxy sent with each value's length
// (X-Forwarded-Host's aside, as it names the proxy's port), so run.sh can
// check that two contenders send the upstream the same work.
package main

import (
	"flag"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// body is 64 bytes: a small page, so the benchmark measures the proxy,
// not the network.
var body = []byte("hello from the upstream; this body is exactly 64 bytes long....\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	addrFile := flag.String("addr-file", "", "write the actual listen address to this file")
	flag.Parse()
	if len(body) != 64 {
		log.Fatalf("body is %d bytes, want 64", len(body))
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *addrFile != "" {
		// Write then rename, so a reader never sees a partial address.
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("upstream listening on", ln.Addr())

	var served, conns atomic.Int64
	contentLength := strconv.Itoa(len(body))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/__count":
				fmt.Fprintln(w, served.Load())
				return
			case "/__conns":
				fmt.Fprintln(w, conns.Load())
				return
			case "/__headers":
				names := slices.Sorted(maps.Keys(r.Header))
				for _, name := range names {
					size := strconv.Itoa(len(strings.Join(r.Header[name], ", ")))
					if name == "X-Forwarded-Host" {
						size = "-"
					}
					fmt.Fprintln(w, name, size)
				}
				return
			}
			served.Add(1)
			h := w.Header()
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			h["Content-Length"] = []string{contentLength}
			_, _ = w.Write(body)
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Fatal(srv.Serve(ln))
}
