package caddymodule

import (
	"sync"
	"sync/atomic"
)

// storeUses counts the requests of one configuration that are using its
// store, so that the store is closed after the last of them rather than
// under them. On `caddy reload` Caddy starts the new configuration, asks
// the old servers to shut down without waiting for their requests, and
// cleans the old configuration up at once: a sign-in whose callback was
// waiting for the provider, or an admin export part-way, then met a
// closed database (a 503 "sign-in temporarily unavailable", an export
// cut short) although nothing was wrong with the store.
//
// The configuration itself holds one use from its start; the store
// module's Cleanup gives it back with retire, and whichever use ends
// last runs the close.
type storeUses struct {
	n     atomic.Int64 // the configuration's use, plus one per request
	close func()       // set by retire, before its use is given back
	once  sync.Once
}

func newStoreUses() *storeUses {
	u := new(storeUses)
	u.n.Store(1)
	return u
}

// begin counts a use of the store. It reports false when the store was
// already closed (a request that began after its configuration was
// cleaned up and its last use ended), or when u is nil (an app not
// provisioned): the caller then has nothing to give back.
func (u *storeUses) begin() bool {
	if u == nil {
		return false
	}
	if u.n.Add(1) == 1 {
		u.n.Add(-1)
		return false
	}
	return true
}

// end gives back a use counted by begin (or the configuration's own, in
// retire); the last one closes the store.
func (u *storeUses) end() {
	if u.n.Add(-1) == 0 {
		u.once.Do(u.close)
	}
}

// retire gives back the configuration's use: close runs now if no
// request is using the store, otherwise when the last one ends.
func (u *storeUses) retire(close func()) {
	u.close = close
	u.end()
}

// usesCounter is a store module that closes its database through
// storeUses (the shipped stores): the app hands it its counter when it
// loads it.
type usesCounter interface{ closeAfterUses(*storeUses) }

// storeUses is the count of h's configuration (nil, which counts
// nothing, for a handler no app provisioned, as unit tests build).
func (h *Handler) storeUses() *storeUses {
	if h.app == nil {
		return nil
	}
	return h.app.uses
}
