package provisioner_test

import (
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Recognise names a bearer token's user "without writing anything ... so
// what a bearer token says cannot change the directory". With JIT off,
// under a local user's verified-email name (a Holder), it must not move
// that user's last login: an API token, which stays good through
// sign-outs until its exp, would otherwise keep the user from
// deprovisioning (and JIT-on tokens do not).
func TestRecogniseJITOffWritesNothing(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := &provisioner.Provisioner{Store: s, Now: clk.Now}
	created, err := provision(p, ctx, "corp", on, aliceClaims())
	if err != nil {
		t.Fatal(err)
	}
	before := created.User.LastLoginAt

	clk.t = clk.t.Add(90 * 24 * time.Hour)
	off := provisioner.Policy{}
	res, err := p.Recognise(ctx, provisioner.Request{Connection: "partner", Policy: &off, Claims: aliceClaims()})
	if err != nil || res.Holder != created.User.ID {
		t.Fatalf("Recognise: %+v, %v; want the holder %s", res, err, created.User.ID)
	}
	u, err := s.User(ctx, created.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !u.LastLoginAt.Equal(before) {
		t.Errorf("Recognise (a bearer token) wrote the user's last login: %v, was %v", u.LastLoginAt, before)
	}
}
