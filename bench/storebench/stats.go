package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// latencies summarises a set of call durations.
type latencies struct {
	n             int
	p50, p99, max time.Duration
	mean          time.Duration
	wall          time.Duration // wall time of the whole phase
	perSecond     float64       // n / wall
	over100ms     int           // calls that took longer than 100ms
	over1s        int           // … and longer than 1s
}

func summarise(d []time.Duration, wall time.Duration) latencies {
	s := latencies{n: len(d), wall: wall}
	if len(d) == 0 {
		return s
	}
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
		if x > 100*time.Millisecond {
			s.over100ms++
		}
		if x > time.Second {
			s.over1s++
		}
	}
	s.p50, s.p99, s.max = rank(d, 0.50), rank(d, 0.99), d[len(d)-1]
	s.mean = sum / time.Duration(len(d))
	if wall > 0 {
		s.perSecond = float64(len(d)) / wall.Seconds()
	}
	return s
}

// rank is the nearest-rank percentile of sorted d.
func rank(d []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

func (l latencies) String() string {
	return fmt.Sprintf("n=%d in %s (%.0f/s), latency p50 %s, p99 %s, max %s, mean %s; %d calls over 100ms, %d over 1s",
		l.n, l.wall.Round(time.Millisecond), l.perSecond, dur(l.p50), dur(l.p99), dur(l.max), dur(l.mean), l.over100ms, l.over1s)
}

// dur prints a latency in the unit that suits it.
func dur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
}

// count prints 1000000 as 1,000,000.
func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// loadavg returns the first three fields of /proc/loadavg, or "?".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
