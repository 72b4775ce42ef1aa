package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"github.com/jitauth/caddy-jitauth/secret"
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
// Migrating the schema after an upgrade may take longer on a large
// directory, up to 10 minutes, during which Caddy is starting.
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

	opened bool // connected and migrated (by open)
	uses   *storeUses
	logger *zap.Logger
}

// postgresOpenTimeout bounds connecting to the database when the app
// starts, and postgresMigrateTimeout migrating its schema then: a step
// over a large directory takes longer than a server takes to answer
// (schema 6's backfill, 10 s at 700,000 users), and one bounded by the
// first was rolled back at every start, so Caddy never started again.
const (
	postgresOpenTimeout    = 10 * time.Second
	postgresMigrateTimeout = 10 * time.Minute
)

// CaddyModule returns the Caddy module information.
func (PostgresStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jit_auth.stores.postgres",
		New: func() caddy.Module { return new(PostgresStore) },
	}
}

// Provision resolves the URL and sets up the connection pool without
// connecting: caddy validate and a configuration that fails to load
// provision too, and must neither need the database nor migrate its
// schema (validating a newer version's config would otherwise migrate
// the database under the running one). The app connects and migrates
// when it starts (see open); the pool already works before, so a request
// that the new configuration's server takes before then is served.
func (s *PostgresStore) Provision(ctx caddy.Context) error {
	if s.URL == "" {
		return errors.New("PostgreSQL user store: url is required, for example {env.DATABASE_URL}")
	}
	// Resolved here and never written back, so the password stays out
	// of the config; the error names the variable, never the URL.
	url, err := secret.Resolve("url", s.URL)
	if err != nil {
		return fmt.Errorf("PostgreSQL user store: %v", err)
	}
	st, err := pgstore.New(url)
	if err != nil {
		return fmt.Errorf("PostgreSQL user store: %v", err)
	}
	s.Store = st
	s.logger = ctx.Logger()
	return nil
}

// open connects to the database and migrates its schema, once, each
// within its own bound.
func (s *PostgresStore) open() error {
	if s.opened {
		return nil
	}
	octx, cancel := context.WithTimeout(context.Background(), postgresOpenTimeout)
	defer cancel()
	if err := s.Store.Reach(octx); err != nil {
		return fmt.Errorf("opening PostgreSQL user store: %v", err)
	}
	mctx, mcancel := context.WithTimeout(context.Background(), postgresMigrateTimeout)
	defer mcancel()
	if err := s.Store.Migrate(mctx); err != nil {
		return fmt.Errorf("opening PostgreSQL user store: %v", err)
	}
	s.opened = true
	s.logger.Info("user store opened", zap.String("backend", "postgres"), zap.String("database", s.Store.Target()))
	return nil
}

// closeAfterUses makes Cleanup close the pool once the requests counted
// by uses have ended.
func (s *PostgresStore) closeAfterUses(uses *storeUses) { s.uses = uses }

// Cleanup closes the connection pool, once this configuration's
// requests still under way have ended (storeUses).
func (s *PostgresStore) Cleanup() error {
	if s.Store == nil {
		return nil
	}
	if s.uses == nil {
		return s.Store.Close()
	}
	st := s.Store
	s.uses.retire(func() { _ = st.Close() })
	return nil
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
	_ usesCounter           = (*PostgresStore)(nil)
)
