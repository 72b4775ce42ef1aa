package caddymodule

import (
	"fmt"
	"testing"
	"time"
)

func TestLogSpacing(t *testing.T) {
	var l logSpacing
	t0 := time.Unix(1_000_000, 0)
	if n, ok := l.due(t0); !ok || n != 0 {
		t.Fatalf("first line: %d, %v", n, ok)
	}
	for i := range 5 {
		if _, ok := l.due(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatalf("a line %d s after the first was let through", i)
		}
	}
	if n, ok := l.due(t0.Add(logSpacingInterval)); !ok || n != 5 {
		t.Fatalf("after the interval: %d held back, %v; want 5, true", n, ok)
	}
}

// Each code has its spacing, up to maxSpacedCodes of them; codes past
// that (made up by a client) share one, and take no memory.
func TestCodeSpacing(t *testing.T) {
	var c codeSpacing
	t0 := time.Unix(1_000_000, 0)
	for _, code := range []string{"invalid_client", "redirect_uri_mismatch"} {
		if _, ok := c.due(code, t0); !ok {
			t.Fatalf("the first %s was held back", code)
		}
		if _, ok := c.due(code, t0.Add(time.Second)); ok {
			t.Fatalf("a second %s within the interval was let through", code)
		}
	}
	let := 0
	for i := range 1000 {
		if _, ok := c.due(fmt.Sprint("made_up_", i), t0); ok {
			let++
		}
	}
	if len(c.byCode) > maxSpacedCodes || let > maxSpacedCodes-1 {
		t.Fatalf("%d codes kept, %d of 1000 made-up codes let through", len(c.byCode), let)
	}
}

// A onceSet tells a key's first time until it expires, and stays
// bounded however many keys come.
func TestOnceSet(t *testing.T) {
	var o onceSet
	t0 := time.Unix(1_000_000, 0)
	if !o.first("a", t0, t0.Add(time.Minute)) || o.first("a", t0.Add(time.Second), t0.Add(time.Minute)) {
		t.Fatal("a key was not first once")
	}
	if !o.first("a", t0.Add(time.Minute), t0.Add(2*time.Minute)) {
		t.Fatal("an expired key was not first again")
	}
	for i := range 3 * maxOnce {
		o.first(fmt.Sprint(i), t0, t0.Add(time.Hour))
		if len(o.seen) > maxOnce {
			t.Fatalf("%d keys held, over %d", len(o.seen), maxOnce)
		}
	}
	if o.first(fmt.Sprint(3*maxOnce-1), t0, t0.Add(time.Hour)) {
		t.Fatal("the latest key was forgotten")
	}
}
