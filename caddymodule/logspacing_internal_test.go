package caddymodule

import (
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
