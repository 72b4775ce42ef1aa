package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI adds jit_auth's operations to Caddy's admin API (by default
// on localhost:2019, reachable only by whoever controls Caddy):
//
//	DELETE /jit_auth/users/<local ID or username>/totp
//
// resets a user's TOTP factor; the user enrols again at the next login
// to an application that requires it.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.jit_auth",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the admin routes.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/jit_auth/users/", Handler: caddy.AdminHandlerFunc(handleAdminUsers)}}
}

func handleAdminUsers(w http.ResponseWriter, r *http.Request) error {
	ref, what, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/jit_auth/users/"), "/")
	if ref == "" || what != "totp" {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("unknown jit_auth admin route; use DELETE /jit_auth/users/<id or username>/totp")}
	}
	if r.Method != http.MethodDelete {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed; use DELETE", r.Method)}
	}
	ctx := caddy.ActiveContext()
	appIface, err := ctx.AppIfConfigured("jit_auth")
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("the jit_auth app is not configured")}
	}
	app := appIface.(*App)
	sctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	u, err := app.store.User(sctx, ref)
	if errors.Is(err, provisioner.ErrNotFound) {
		u, err = app.store.UserByUsername(sctx, ref)
	}
	switch {
	case errors.Is(err, provisioner.ErrNotFound):
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no user with ID or username %q", ref)}
	case err != nil:
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("user store: %v", err)}
	}
	if err := app.store.DeleteTOTP(sctx, u.ID); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("user store: %v", err)}
	}
	app.logger.Info("totp reset by an administrator", zap.String("username", u.Username), zap.String("local_id", u.ID))
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]string{"local_id": u.ID, "username": u.Username, "totp": "reset"})
}

// Interface guards
var _ caddy.AdminRouter = (*adminAPI)(nil)
