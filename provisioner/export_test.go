package provisioner

// Internals exported for the external tests in provisioner_test.go, which
// cannot live in this package because they use sqlitestore (which imports
// this package).
var (
	CleanUsername  = cleanUsername
	IdentitySuffix = identitySuffix
)

// UsernameFromClaims is the username the default templates give.
func UsernameFromClaims(connection string, c Claims) string {
	var p Policy
	return p.Username(connection, c, p.MapProfile(connection, c))
}
