package caddymodule

import (
	"fmt"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

func init() {
	caddy.RegisterModule(SQLiteStore{})
}

// SQLiteStore keeps local users in an embedded SQLite database file. It
// needs no server and no C toolchain. Use it for a single Caddy
// instance; instances behind a load balancer need a shared store.
type SQLiteStore struct {
	// Path is the database file. Default: jit_auth/users.db in Caddy's
	// data directory. Placeholders such as {env.JIT_DB} are expanded.
	Path string `json:"path,omitempty"`

	*sqlitestore.Store `json:"-"`
}

// CaddyModule returns the Caddy module information.
func (SQLiteStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jit_auth.stores.sqlite",
		New: func() caddy.Module { return new(SQLiteStore) },
	}
}

// Provision opens (and if needed creates and migrates) the database.
func (s *SQLiteStore) Provision(ctx caddy.Context) error {
	path := caddy.NewReplacer().ReplaceKnown(s.Path, "")
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), "jit_auth", "users.db")
	}
	st, err := sqlitestore.Open(path)
	if err != nil {
		return fmt.Errorf("opening SQLite user store at %s: %v", path, err)
	}
	s.Store = st
	ctx.Logger().Info("user store opened", zap.String("backend", "sqlite"), zap.String("path", path))
	return nil
}

// Cleanup closes the database.
func (s *SQLiteStore) Cleanup() error {
	if s.Store == nil {
		return nil
	}
	return s.Store.Close()
}

// Interface guards
var (
	_ caddy.Provisioner  = (*SQLiteStore)(nil)
	_ caddy.CleanerUpper = (*SQLiteStore)(nil)
)
