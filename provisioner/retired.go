package provisioner

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// UsernameRetirer is an optional part of a store that plays UserStore
// and AdminStore: it retires the username of a deleted user, so that
// the name an upstream knew as one person (Remote-User) is never given
// to another (S15). A store that implements it:
//
//   - in DeleteUser and DeleteUserIf, in the deleting transaction,
//     records the user's username as retired (RetiredName), together
//     with each identity the user had (RetiredHolder), unless
//     RetiredName is "" (a name with '@', see RetiredName);
//   - in CreateUser, refuses a retired username with ErrUsernameTaken,
//     writing nothing, unless the new user's identity is one the name
//     was retired with (the same person signing in again), also when
//     the name's holder is deleted at the same moment.
//
// The records are hashes: the store keeps no deleted user's name nor
// identity, only a way to recognise them when they are offered again.
// A retired name stays retired.
//
// Without it a deleted user's username is free for the next new user,
// whoever that is. Both shipped stores implement it;
// storetest.RunUsernameRetirer checks it.
type UsernameRetirer interface {
	// UsernameRetired reports whether username (compared as
	// NormalizeUsername makes it) is retired for key: a deleted user
	// had it and key was none of that user's identities.
	UsernameRetired(ctx context.Context, username string, key IdentityKey) (bool, error)
}

// RetiredName is the record under which a store keeps username retired
// (UsernameRetirer): a hex SHA-256 hash of its normalised form. It is
// "" for a name that is never retired: an empty name, and a name with
// '@'. A name with '@' is only ever given as a verified email address
// (see usernameCandidates), which names whoever holds that mailbox
// now, on every connection, JIT on or off; the JIT-off sessions of the
// mailbox's next owner carry it whatever the store keeps, so retiring
// it would only lock that owner out of the name that is theirs.
func RetiredName(username string) string {
	norm := NormalizeUsername(username)
	if norm == "" || strings.Contains(norm, "@") {
		return ""
	}
	return retiredHash("name", norm)
}

// RetiredHolder is the record of one identity a retired username was
// retired with: a hex SHA-256 hash of the normalised name with the
// identity's key, so that it says only whether that identity had that
// name, to someone who knows both already.
func RetiredHolder(username string, key IdentityKey) string {
	return retiredHash("holder", NormalizeUsername(username), key.Connection, key.Issuer, key.Subject)
}

// retiredHash hashes kind and parts, each part prefixed by its length,
// so that no two lists of parts hash alike ("a"+"bc" and "ab"+"c").
func retiredHash(kind string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte("jitauth retired username " + kind))
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}
