package caddymodule

import (
	"testing"
	"time"
)

func TestWaitText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1 second", 300 * time.Millisecond: "1 second", 999 * time.Millisecond: "1 second",
		time.Second: "1 second", 1001 * time.Millisecond: "2 seconds", 1500 * time.Millisecond: "2 seconds", 3 * time.Second: "3 seconds",
		5*time.Minute - time.Millisecond: "300 seconds", -time.Second: "1 second",
	} {
		if got := waitText(d); got != want {
			t.Errorf("waitText(%v) = %q, want %q", d, got, want)
		}
	}
}
