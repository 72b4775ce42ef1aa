package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestPortIsNeverAKernelPort is the failure this package exists for: a
// port handed out, then a port-0 listener (an httptest upstream), then
// the server that was to take the first port.
func TestPortIsNeverAKernelPort(t *testing.T) {
	elo, ehi := ephemeralRange()
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if p >= elo && p <= ehi {
			t.Fatalf("port %d lies in the ephemeral range %d-%d", p, elo, ehi)
		}
		up, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		up.Close()
		if err != nil {
			t.Fatalf("port %d, handed out a moment ago: %v", p, err)
		}
		l.Close()
	}
}

func TestPortSkipsPortsInUse(t *testing.T) {
	p, err := Port()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if free(p) {
		t.Fatalf("port %d, listened on on loopback, counts as free", p)
	}
}

func TestCandidates(t *testing.T) {
	for _, c := range []struct{ elo, ehi, lo, hi int }{
		{32768, 60999, lowest, 32767},
		{49152, 65535, lowest, 49151},
		{1024, 60000, 60001, 65535},
		{1024, 65000, 1, 0},
	} {
		lo, hi := candidates(c.elo, c.ehi)
		if lo != c.lo || hi != c.hi {
			t.Errorf("candidates(%d, %d) = %d, %d; want %d, %d", c.elo, c.ehi, lo, hi, c.lo, c.hi)
		}
	}
}
