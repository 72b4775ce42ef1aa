package provisioner

// Internals exported for the external tests in provisioner_test.go, which
// cannot live in this package because they use sqlitestore (which imports
// this package).
var (
	UsernameFromClaims = usernameFromClaims
	CleanUsername      = cleanUsername
)
