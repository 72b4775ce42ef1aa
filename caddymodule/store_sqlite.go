package caddymodule

import (
	"errors"
	"fmt"
	"github.com/jitauth/caddy-jitauth/secret"
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
//
// The file is opened when Caddy starts the configuration, not when it
// checks it: `caddy validate`, or a configuration that fails to load,
// creates no file. Every configuration that names the same file shares
// one open database, kept open across `caddy reload`: two handles on one
// file in one process would break SQLite's locking, and an outside
// reader (the sqlite3 tool, a backup) could then remove the live
// write-ahead log under Caddy.
type SQLiteStore struct {
	// Path is the database file. Default: jit_auth/users.db in Caddy's
	// data directory. Placeholders such as {env.JIT_DB} or {file.*} are
	// expanded when the configuration loads; an unset one is an error.
	Path string `json:"path,omitempty"`

	*sqlitestore.Store `json:"-"`

	path   string // resolved, as opened
	key    string // in sqliteHandles; "" until opened
	uses   *storeUses
	logger *zap.Logger
}

// sqliteHandles holds one open database per file (by resolved absolute
// path), shared by every configuration generation that uses it.
var sqliteHandles = caddy.NewUsagePool()

// sqliteHandle is a database in sqliteHandles; it is closed when the
// last configuration that uses it is cleaned up.
type sqliteHandle struct{ *sqlitestore.Store }

// Destruct closes the database.
func (h sqliteHandle) Destruct() error { return h.Close() }

// CaddyModule returns the Caddy module information.
func (SQLiteStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jit_auth.stores.sqlite",
		New: func() caddy.Module { return new(SQLiteStore) },
	}
}

// Provision resolves the database path. It does not touch the file
// system; the app opens the database when it starts (see open), unless
// another configuration of this process has it open already.
func (s *SQLiteStore) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	// Placeholders resolve as in the secret fields: an unset {env.*}
	// is an error, not a silent fall-back to the default file.
	path, err := secret.Resolve("path", s.Path)
	if err != nil {
		return err
	}
	if s.path = path; s.path == "" {
		s.path = filepath.Join(caddy.AppDataDir(), "jit_auth", "users.db")
	}
	// On a reload the file is already open in this process: join it now,
	// so the new configuration has its store before any of its apps
	// starts (Caddy starts them in no set order, and the http app may
	// serve before the jit_auth app has started).
	if key, err := sqliteHandleKey(s.path); err == nil {
		if _, open := sqliteHandles.References(key); open {
			return s.open()
		}
	}
	return nil
}

// open opens (and if needed creates and migrates) the database, or
// joins the handle another configuration already has on the same file.
func (s *SQLiteStore) open() error {
	if s.key != "" {
		return nil
	}
	key, err := sqliteHandleKey(s.path)
	if err != nil {
		return fmt.Errorf("SQLite user store at %s: %v", s.path, err)
	}
	v, loaded, err := sqliteHandles.LoadOrNew(key, func() (caddy.Destructor, error) {
		st, err := sqlitestore.Open(s.path)
		if err != nil {
			return nil, err
		}
		return sqliteHandle{st}, nil
	})
	if err != nil {
		// A failed constructor leaves no entry (and no reference) behind.
		return fmt.Errorf("opening SQLite user store at %s: %v", s.path, err)
	}
	s.key, s.Store = key, v.(sqliteHandle).Store
	if !loaded {
		s.logger.Info("user store opened", zap.String("backend", "sqlite"), zap.String("path", s.path))
	}
	return nil
}

// sqliteHandleKey names the file at path however it is spelt: absolute,
// cleaned, with symbolic links resolved as far as the path exists.
func sqliteHandleKey(path string) (string, error) {
	if path == ":memory:" {
		return path, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		return resolved, nil
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs)), nil
	}
	return abs, nil
}

// closeAfterUses makes Cleanup release the database once the requests
// counted by uses have ended.
func (s *SQLiteStore) closeAfterUses(uses *storeUses) { s.uses = uses }

// Cleanup releases this configuration's use of the database, once its
// requests still under way have ended (storeUses); the last
// configuration to release it closes it.
func (s *SQLiteStore) Cleanup() error {
	if s.key == "" {
		return nil
	}
	key := s.key
	s.key = ""
	release := func() error {
		if _, err := sqliteHandles.Delete(key); err != nil {
			return errors.Join(fmt.Errorf("closing SQLite user store at %s", s.path), err)
		}
		return nil
	}
	if s.uses == nil {
		return release()
	}
	s.uses.retire(func() {
		if err := release(); err != nil {
			s.logger.Error("closing the user store", zap.Error(err))
		}
	})
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner  = (*SQLiteStore)(nil)
	_ caddy.CleanerUpper = (*SQLiteStore)(nil)
	_ opener             = (*SQLiteStore)(nil)
	_ usesCounter        = (*SQLiteStore)(nil)
)
