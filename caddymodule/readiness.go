package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Readiness is what a load balancer asks before it sends users here:
// /.jitauth/health says the handler answers (liveness, never the
// store), /.jitauth/ready says this instance can sign users in: it has
// started and its user store answers within readyTimeout.

const (
	// readyTimeout bounds the store check.
	readyTimeout = 2 * time.Second
	// readyCacheFor is how long one check's answer is reused, so probes
	// (or anyone who finds the URL) cannot turn into store load.
	readyCacheFor = time.Second
)

// readiness remembers the last store check of a configuration.
type readiness struct {
	mu      sync.Mutex
	checked time.Time
	err     error
}

// pinger is a store that can say cheaply whether it answers; both
// shipped stores can.
type pinger interface {
	Ping(ctx context.Context) error
}

// check asks the store, at most once per readyCacheFor; callers meanwhile
// wait for the one check in flight.
func (rd *readiness) check(store provisioner.UserStore, logger *zap.Logger) error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if !rd.checked.IsZero() && time.Since(rd.checked) < readyCacheFor {
		return rd.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	var err error
	if p, ok := store.(pinger); ok {
		err = p.Ping(ctx)
	} else if _, err = store.User(ctx, "jit_auth readiness check"); errors.Is(err, provisioner.ErrNotFound) {
		err = nil
	}
	if err != nil && rd.err == nil {
		logger.Warn("readiness: the user store does not answer", zap.Error(err))
	}
	rd.checked, rd.err = time.Now(), err
	return err
}

// serveReady answers 200 {"status":"ready"} or 503 with the reason and
// Retry-After. The reason does not carry the store's error, which can
// name database hosts: the log has it.
func serveReady(h *Handler, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	select {
	case <-h.app.ready:
	default:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable","reason":"starting"}` + "\n"))
		return
	}
	if err := h.app.readiness.check(h.app.storeModule, h.app.logger); err != nil {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable","reason":"the user store does not answer"}` + "\n"))
		return
	}
	_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
}
