package caddymodule

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"
)

// A session counts at most session_lifetime from its sign-in, and at
// most the shortest session_lifetime configured since: a reload that
// shortens it ends the older sessions, and one that lengthens it again
// must not bring them back (their cookies still say when they would
// have ended), nor outlive a sign-out everywhere made meanwhile, which
// is kept only as long as the lifetime then (cutoffExpiry). So the
// lifetimes configured, and since when, are kept in Caddy's storage,
// which instances share as they share pending logouts, and in memory
// across reloads for a storage that fails.

// lifetimeHistoryKey is where the history is kept in Caddy's storage.
const lifetimeHistoryKey = "jit_auth/session_lifetimes.json"

// lifetimeChange is one session_lifetime (seconds) and when it took
// effect (Unix nanoseconds: two reloads in one second keep their order).
type lifetimeChange struct {
	From     int64 `json:"from_ns"`
	Lifetime int64 `json:"lifetime"`
}

// lifetimeHistory is the lifetimes in the order they took effect; each
// is in force until the next one's From.
type lifetimeHistory []lifetimeChange

// shortestSince returns the shortest lifetime in force at any time
// from issued (Unix seconds) on, or 0 for an empty history. A session
// says only the second it was issued in: a lifetime replaced within that
// second counts as replaced before it (a reload undone at once does not
// bind the sign-ins of that second).
func (h lifetimeHistory) shortestSince(issued int64) int64 {
	var shortest int64
	end := (issued + 1) * int64(time.Second)
	for i, c := range h {
		if i+1 < len(h) && h[i+1].From < end {
			continue // replaced before the session was issued
		}
		if shortest == 0 || c.Lifetime < shortest {
			shortest = c.Lifetime
		}
	}
	return shortest
}

// end is when a session issued at issued that would end at expires
// (Unix seconds) ends under h: at most the shortest lifetime in force
// since its sign-in after it.
func (h lifetimeHistory) end(issued, expires int64) int64 {
	if l := h.shortestSince(issued); l > 0 && issued+l < expires {
		return issued + l
	}
	return expires
}

// with returns h with lifetime in force from now (unless it already
// is), pruned. Each change is dated after the one before, so that the
// order stays whatever the clock does.
func (h lifetimeHistory) with(now time.Time, lifetime time.Duration) lifetimeHistory {
	out := slices.Clone(h)
	secs := int64(lifetime / time.Second)
	if len(out) == 0 || out[len(out)-1].Lifetime != secs {
		from := now.UnixNano()
		if len(out) > 0 {
			from = max(from, out[len(out)-1].From+1)
		}
		out = append(out, lifetimeChange{From: from, Lifetime: secs})
	}
	return out.pruned(now)
}

// pruned is h without the changes no live session can be bound by any
// more: one replaced longer ago than the longest lifetime in h, since
// every session issued while it was in force has ended.
func (h lifetimeHistory) pruned(now time.Time) lifetimeHistory {
	var longest int64
	for _, c := range h {
		longest = max(longest, c.Lifetime)
	}
	for len(h) > 1 && h[1].From+longest*int64(time.Second) < now.UnixNano() {
		h = h[1:]
	}
	return h
}

// merged is the union of h and o in order of From. Two changes dated
// alike (by two instances) are both kept, the shorter lifetime last, so
// that it counts as in force from then; a change to the lifetime in
// force is dropped.
func (h lifetimeHistory) merged(o lifetimeHistory) lifetimeHistory {
	out := append(slices.Clone(h), o...)
	slices.SortStableFunc(out, func(a, b lifetimeChange) int {
		if a.From != b.From {
			return cmp.Compare(a.From, b.From)
		}
		return cmp.Compare(b.Lifetime, a.Lifetime)
	})
	// A change to the lifetime already in force changes nothing.
	return slices.CompactFunc(out, func(a, b lifetimeChange) bool { return a.Lifetime == b.Lifetime })
}

// loadLifetimes reads the history kept in storage: nil when there is
// none yet.
func loadLifetimes(ctx context.Context, storage revocationStorage) (lifetimeHistory, error) {
	data, err := storage.Load(ctx, lifetimeHistoryKey)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h lifetimeHistory
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("%s is not a session_lifetime history (%v); delete it, and it is written anew at the next start", lifetimeHistoryKey, err)
	}
	return h, nil
}

// storageLocker is the part of Caddy's storage that serialises writers
// across instances.
type storageLocker interface {
	Lock(ctx context.Context, name string) error
	Unlock(ctx context.Context, name string) error
}

// saveLifetimes merges h into the history kept in storage, with
// lifetime in force from now (after whatever another configuration or
// instance recorded since h was read), under the storage's lock when it
// has one, so that two instances reloading at once both leave their
// change; it returns the merged history.
func saveLifetimes(ctx context.Context, storage revocationStorage, h lifetimeHistory, now time.Time, lifetime time.Duration) (lifetimeHistory, error) {
	h = h.with(now, lifetime)
	if l, ok := storage.(storageLocker); ok {
		if err := l.Lock(ctx, lifetimeHistoryKey); err != nil {
			return h, err
		}
		defer func() { _ = l.Unlock(context.WithoutCancel(ctx), lifetimeHistoryKey) }()
	}
	stored, err := loadLifetimes(ctx, storage)
	if err != nil && !errors.As(err, new(*json.SyntaxError)) && !errors.As(err, new(*json.UnmarshalTypeError)) {
		return h, err
	}
	// A history that does not read is replaced by this one.
	merged := stored.merged(h).with(now, lifetime)
	data, err := json.Marshal(merged)
	if err != nil {
		return h, err
	}
	return merged, storage.Store(ctx, lifetimeHistoryKey, data)
}
