package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/pgstore"
)

func init() {
	caddy.RegisterModule(PostgresStore{})
}

// PostgresStore keeps local users in a PostgreSQL database, so that
// several Caddy instances (behind a load balancer) share users, logins
// and logouts. The schema is created and migrated automatically when
// Caddy starts; instances starting at once coordinate through the
// database.
//
// Caddy refuses to start (or to load a new config) when the database
// does not answer within 10 seconds or its schema was migrated by a
// newer caddy-jitauth: the error names the server, never the password.
// Once running, an unreachable database makes logins that need the
// store fail closed until it is back; the connection pool reconnects
// by itself.
type PostgresStore struct {
	// URL is the PostgreSQL connection URL, for example
	// postgres://jitauth:secret@db.example.com:5432/auth?sslmode=verify-full
	// (libpq keyword/value strings work too). To keep the tables in a
	// schema of their own, add search_path=<schema>; the schema must
	// exist. Pool settings such as pool_max_conns are accepted.
	//
	// Placeholders are expanded when Caddy provisions the store and are
	// never written back: prefer {env.DATABASE_URL} or
	// {file./run/secrets/database_url}, which keep the password out of
	// the JSON config. An unset variable or unreadable file is an error
	// naming it. (In a Caddyfile, {$DATABASE_URL} also works, but is
	// substituted when the Caddyfile is adapted, so the password ends up
	// in the adapted config and in GET /config/.)
	URL string `json:"url,omitempty"`

	*pgstore.Store `json:"-"`
}

// postgresOpenTimeout bounds connecting to and migrating the database
// when Caddy provisions the store.
const postgresOpenTimeout = 10 * time.Second

// CaddyModule returns the Caddy module information.
func (PostgresStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jit_auth.stores.postgres",
		New: func() caddy.Module { return new(PostgresStore) },
	}
}

// Provision connects to the database and migrates its schema.
func (s *PostgresStore) Provision(ctx caddy.Context) error {
	if s.URL == "" {
		return errors.New("PostgreSQL user store: url is required, for example {env.DATABASE_URL}")
	}
	// Resolved here and never written back, so the password stays out
	// of the config; the error names the variable, never the URL.
	url, err := resolveSecret("url", s.URL)
	if err != nil {
		return fmt.Errorf("PostgreSQL user store: %v", err)
	}
	octx, cancel := context.WithTimeout(ctx, postgresOpenTimeout)
	defer cancel()
	st, err := pgstore.Open(octx, url)
	if err != nil {
		return fmt.Errorf("opening PostgreSQL user store: %v", err)
	}
	s.Store = st
	ctx.Logger().Info("user store opened", zap.String("backend", "postgres"), zap.String("database", st.Target()))
	return nil
}

// Cleanup closes the connection pool.
func (s *PostgresStore) Cleanup() error {
	if s.Store == nil {
		return nil
	}
	return s.Store.Close()
}

// UnmarshalCaddyfile sets up the PostgreSQL store. Syntax:
//
//	store postgres <url>
//
// for example `store postgres {env.DATABASE_URL}`.
func (s *PostgresStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // backend name
	if !d.NextArg() {
		return d.Errf("store postgres needs a connection URL, for example: store postgres {env.DATABASE_URL}")
	}
	s.URL = d.Val()
	if d.NextArg() {
		return d.Errf("store postgres takes one argument, the connection URL (quote it if it holds spaces)")
	}
	if d.NextBlock(0) {
		return d.Errf("store postgres takes no block; the only setting is the connection URL")
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*PostgresStore)(nil)
	_ caddy.CleanerUpper    = (*PostgresStore)(nil)
	_ caddyfile.Unmarshaler = (*PostgresStore)(nil)
	_ provisioner.Store     = (*PostgresStore)(nil)
)
