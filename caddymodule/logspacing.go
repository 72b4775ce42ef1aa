package caddymodule

import (
	"sync/atomic"
	"time"
)

// logSpacingInterval is the least time between two lines a logSpacing
// lets through.
const logSpacingInterval = 10 * time.Second

// logSpacing lets a log line that anyone's requests can repeat through
// at most once per logSpacingInterval, counting those it held back. The
// zero value is ready.
type logSpacing struct {
	next    atomic.Int64 // Unix nanoseconds before which lines are held back
	skipped atomic.Uint64
}

// due reports whether a line may be logged at now, and how many were
// held back since the last one that was.
func (l *logSpacing) due(now time.Time) (skipped uint64, ok bool) {
	next := l.next.Load()
	if now.UnixNano() < next || !l.next.CompareAndSwap(next, now.Add(logSpacingInterval).UnixNano()) {
		l.skipped.Add(1)
		return 0, false
	}
	return l.skipped.Swap(0), true
}
