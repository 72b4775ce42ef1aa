// Package freeport hands out TCP ports for servers that must know their
// port before they start, as Caddy does when its site address is also the
// redirect URI registered at a provider.
//
// Asking the kernel for a port (listening on port 0) and closing the
// listener does not reserve it: the next listener on port 0 in the same
// run, an httptest upstream say, may be given the very same port, and then
// Caddy's listen fails with "address already in use". So the ports handed
// out here come from outside the kernel's ephemeral range, which it never
// gives to port-0 listeners or outgoing connections, and no port is handed
// out twice by one process.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the first port considered: well above the registered ports
// that services on a development machine commonly use.
const lowest = 20000

var (
	mu     sync.Mutex
	handed = map[int]bool{}
)

// Port returns a TCP port that is free on every interface, lies outside
// the kernel's ephemeral range, and has not been returned before in this
// process. Between processes (test packages run in parallel) a random
// choice among some ten thousand ports keeps collisions unlikely; the
// port is only checked, not held.
func Port() (int, error) {
	lo, hi := candidates(ephemeralRange())
	mu.Lock()
	defer mu.Unlock()
	if lo > hi {
		return kernelPort()
	}
	n := hi - lo + 1
	start := rand.IntN(n)
	for i := 0; i < n && i < 2000; i++ {
		p := lo + (start+i)%n
		if handed[p] || !free(p) {
			continue
		}
		handed[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("freeport: no free port in %d-%d", lo, hi)
}

// candidates returns the ports outside the ephemeral range [elo, ehi],
// preferring those below it.
func candidates(elo, ehi int) (lo, hi int) {
	if elo-lowest >= 1000 {
		return lowest, elo - 1
	}
	if 65535-ehi >= 1000 {
		return ehi + 1, 65535
	}
	return 1, 0
}

// ephemeralRange reads Linux's range for port-0 listeners and outgoing
// connections; elsewhere it assumes IANA's dynamic range, which is what
// the BSDs, macOS and Windows use.
func ephemeralRange() (lo, hi int) {
	lo, hi = 49152, 65535
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l > h {
		return lo, hi
	}
	return l, h
}

// free reports whether p can be listened on on every interface, which
// also fails when some process listens on it on loopback only.
func free(p int) bool {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// kernelPort is the fallback when the ephemeral range leaves no room.
func kernelPort() (int, error) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
