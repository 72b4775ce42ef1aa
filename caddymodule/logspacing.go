package caddymodule

import (
	"crypto/sha256"
	"sync"
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

// maxSpacedCodes bounds the codes a codeSpacing keeps a logSpacing for.
const maxSpacedCodes = 16

// codeSpacing is a logSpacing per code (an OAuth 2 error code), so that
// one code's line does not hold back another's, which says something
// else (a redirect URI, not the client ID). The connectors give only a
// handful of codes; past maxSpacedCodes the others share one spacing,
// so that codes a client makes up take no more memory. The zero value
// is ready.
type codeSpacing struct {
	mu     sync.Mutex
	byCode map[string]*logSpacing
	others logSpacing
}

// due is logSpacing.due for code's line.
func (c *codeSpacing) due(code string, now time.Time) (skipped uint64, ok bool) {
	c.mu.Lock()
	l := c.byCode[code]
	if l == nil && len(c.byCode) < maxSpacedCodes {
		if c.byCode == nil {
			c.byCode = make(map[string]*logSpacing)
		}
		l = new(logSpacing)
		c.byCode[code] = l
	}
	c.mu.Unlock()
	if l == nil {
		l = &c.others
	}
	return l.due(now)
}

// maxOnce bounds a onceSet.
const maxOnce = 10_000

// onceSet tells whether an outcome that one client can repeat at will
// (one flow cookie replayed with an error answer) is seen for the first
// time, so that it is audited once, not once per request. It holds
// digests of the keys, each until it expires. It is bounded: when full,
// it forgets the expired keys, else a tenth of the keys at random, whose
// outcomes may then be audited once more: a client brings back no more
// of them than it had new ones audited meanwhile. The zero value is ready.
type onceSet struct {
	mu   sync.Mutex
	seen map[[32]byte]time.Time
}

// first records key until expires, and reports whether it was not
// recorded before (or its record has expired).
func (o *onceSet) first(key string, now, expires time.Time) bool {
	d := sha256.Sum256([]byte(key))
	o.mu.Lock()
	defer o.mu.Unlock()
	if exp, ok := o.seen[d]; ok && now.Before(exp) {
		return false
	}
	if o.seen == nil {
		o.seen = make(map[[32]byte]time.Time)
	}
	if len(o.seen) >= maxOnce {
		for k, exp := range o.seen {
			if !now.Before(exp) {
				delete(o.seen, k)
			}
		}
		// Still full of live keys: forget a tenth (map order is
		// random), so that the next sweep is that many keys away.
		for k := range o.seen {
			if len(o.seen) < maxOnce-maxOnce/10 {
				break
			}
			delete(o.seen, k)
		}
	}
	o.seen[d] = expires
	return true
}

// recorded reports whether key is recorded (first) and its record has
// not expired, without recording it.
func (o *onceSet) recorded(key string, now time.Time) bool {
	d := sha256.Sum256([]byte(key))
	o.mu.Lock()
	defer o.mu.Unlock()
	exp, ok := o.seen[d]
	return ok && now.Before(exp)
}
