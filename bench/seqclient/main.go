// Command seqclient sends one keep-alive connection's worth of identical
// GET requests, one at a time, and checks each answers 200: the load of
// bench/instructions.sh, where the count of instructions Caddy executes
// per request matters and the client's speed does not. The request is
// the bench's minimal one (bench/run.sh's REQUEST=minimal: what wrk sends
// plus Cookie and Accept), written byte for byte.
//
//	go run ./bench/seqclient -addr 127.0.0.1:8080 -n 6000 -cookie 'jitauth_session=…'
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
)

func main() {
	addr := flag.String("addr", "", "host:port of the site")
	n := flag.Int("n", 1000, "requests to send")
	cookie := flag.String("cookie", "", "the Cookie header's value")
	flag.Parse()
	if *addr == "" {
		log.Fatal("seqclient: -addr is required")
	}
	c, err := net.Dial("tcp", *addr)
	if err != nil {
		log.Fatalf("seqclient: %v", err)
	}
	defer c.Close()
	req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s\r\n", *addr)
	if *cookie != "" {
		req += "Cookie: " + *cookie + "\r\n"
	}
	req += "Accept: text/html\r\n\r\n"
	br := bufio.NewReader(c)
	for i := 0; i < *n; i++ {
		if _, err := io.WriteString(c, req); err != nil {
			log.Fatalf("seqclient: request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			log.Fatalf("seqclient: request %d: %v", i, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			log.Fatalf("seqclient: request %d: reading the body: %v", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			log.Fatalf("seqclient: request %d to %s: status %d, want 200 (not signed in, or the upstream is down)", i, *addr, resp.StatusCode)
		}
	}
}
