// Package tcpproxy forwards a loopback port to a target and can take the
// target away: every connection cut, the port refusing, then back again.
// Tests use it to make a server (PostgreSQL) unreachable from a client's
// point of view without stopping the server itself.
package tcpproxy

import (
	"io"
	"net"
	"sync"
)

// T is what the proxy needs of its user: testing.TB, or a command's own
// reporter (bench/pgfaults).
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Proxy is a TCP forwarder on 127.0.0.1.
type Proxy struct {
	t      T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

// Start forwards a new loopback port to target until the test ends.
func Start(t T, target string) *Proxy {
	t.Helper()
	p := &Proxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.Up()
	t.Cleanup(p.Down)
	return p
}

// Addr is the proxy's host:port; it stays the same across Down and Up.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Up (re)opens the port.
func (p *Proxy) Up() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.Addr())
	if err != nil {
		p.t.Fatalf("tcpproxy: listening on %s: %v", p.Addr(), err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.relay(c)
		}
	}()
}

func (p *Proxy) relay(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	_, _ = io.Copy(c, s)
	c.Close()
}

// Down closes the port and cuts every open connection.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}
