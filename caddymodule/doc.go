// Package caddymodule is the Caddy glue of caddy-jitauth: the jit_auth
// app (connections, applications, the store module, cookie keys) and the
// jit_auth HTTP handler, with their Caddyfile forms and admin API. The
// JIT rules and the store interfaces are in package provisioner, the
// second factor's rules in package mfa; neither knows Caddy.
//
// Where things go:
//
//   - an endpoint under the path prefix: one row in endpointTable
//     (router.go), its handler beside the others (endpoints.go,
//     consent.go, totp.go), its page a template in pages/;
//   - an admin API endpoint: one row in adminUserRoutes (admin.go) and
//     one handler function;
//   - a feature that acts when a login's session starts or a sign-out
//     ends it (keeping a provider token, signing out there too): a
//     sessionFeature, one row in sessionFeatures (lifecycle.go), not an
//     edit of the login or logout endpoint;
//   - an outcome worth recording: an eventKind in events.go, emitted
//     with emit, the one place that writes the audit log (and where
//     metrics and Caddy events go);
//   - session state: the sessions component (sessions.go) over the
//     shared cache, revocations and user statuses (state.go holds the
//     UsagePools that outlive a reload), with every sealed cookie going
//     through cookieSeal (sealed.go);
//   - the authenticated request path: Handler.ServeHTTP (handler.go),
//     which reads the session through sessions.load and sets the
//     identity headers (headers.go), never touching the store;
//   - a store: a module in the jit_auth.stores namespace (store_*.go)
//     implementing provisioner.Store's roles;
//   - a connection's protocol: a connector module, in its own package
//     under connectors/ (oidc, goth) behind the connector.Connector
//     interface; connection.go loads it, legacy.go translates the form
//     from before connectors were modules.
package caddymodule
