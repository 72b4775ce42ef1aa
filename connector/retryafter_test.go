package connector

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		field string
		want  time.Duration
		ok    bool
	}{
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"Mon, 07 Dec 2026 12:10:00 GMT", 10 * time.Minute, true},
		{"Monday, 07-Dec-26 12:00:30 GMT", 30 * time.Second, true}, // RFC 850, which recipients must read
		{"86400", time.Hour, true},                                 // a day: capped
		{"99999999999999999999", time.Hour, true},                  // overflows an int: capped, not an error
		{"0", 0, false},
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"10s", 0, false},
		{"+10", 0, false},
		{"Mon, 07 Dec 2026 11:00:00 GMT", 0, false}, // in the past
		{"tomorrow", 0, false},
	} {
		got, ok := ParseRetryAfter(c.field, now)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.field, got, ok, c.want, c.ok)
		}
	}
}

func TestRetryAfterReadsThroughWrapping(t *testing.T) {
	err := fmt.Errorf("refresh of a session: %w", &Unavailable{RetryAfter: time.Minute, Err: fmt.Errorf("%w: 429", ErrUnavailable)})
	if got := RetryAfter(err); got != time.Minute {
		t.Errorf("RetryAfter = %v, want 1m", got)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Error("an Unavailable is no longer ErrUnavailable")
	}
	if got := RetryAfter(fmt.Errorf("%w: 503", ErrUnavailable)); got != 0 {
		t.Errorf("RetryAfter of an error without one = %v", got)
	}
}

// FuzzParseRetryAfter: whatever a provider sends, the wait is positive
// and at most an hour, or there is none.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Mon, 07 Dec 2026 12:10:00 GMT", "", "-1", "99999999999999999999", "Sun Nov  6 08:49:37 1994"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, field string) {
		got, ok := ParseRetryAfter(field, now)
		if ok != (got > 0) || got > maxRetryAfter || got < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", field, got, ok)
		}
	})
}
