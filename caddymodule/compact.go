package caddymodule

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"sync"

	"github.com/gorilla/securecookie"
)

// A sealed cookie holds at most maxCookieLength bytes, and securecookie
// encodes its payload in base64 twice, so about 2,200 bytes of JSON fit.
// A user in many groups has a larger session: 100 group names of 30
// characters are 3.4 KB, which is an ordinary Keycloak or Okta account.
// Such a session could not be sealed at all, and the user could never
// sign in. compactJSON compresses a payload that would not fit: group
// names repeat their paths and words, and deflate makes 3 to 6 times
// less of them (what still does not fit one cookie is split over a few:
// session_parts.go). A payload that fits is sealed as JSON exactly as before,
// so the cookies of most sessions are unchanged, and an instance of an
// earlier version still opens them.
type compactJSON struct{}

const (
	// compactAbove is the JSON length above which a payload is
	// compressed: below it, the sealed cookie fits as it is.
	compactAbove = 2048
	// compactMark starts a compressed payload; JSON never starts with it.
	compactMark = 0
	// maxInflated bounds what a compressed payload opens to. Only a
	// holder of the cookie keys can seal one, but a bound costs nothing:
	// a session is a few kilobytes. Serialize seals nothing larger.
	maxInflated = 256 << 10
)

// deflaters keeps compressors for reuse: each holds about 1 MB of
// tables, too much to allocate per cookie.
var deflaters = sync.Pool{New: func() any {
	zw, _ := flate.NewWriter(nil, flate.BestCompression)
	return zw
}}

var errInflatedTooLarge = errors.New("cookie payload larger than 256 KiB")

// Serialize implements securecookie.Serializer.
func (compactJSON) Serialize(src any) ([]byte, error) {
	b, err := securecookie.JSONEncoder{}.Serialize(src)
	if err != nil || len(b) <= compactAbove {
		return b, err
	}
	if len(b) > maxInflated {
		// It would compress well (a provider's 300 KB display name),
		// but Deserialize refuses it: a cookie sealed that the next
		// request cannot open sends the browser to sign in again, and
		// again.
		return nil, errInflatedTooLarge
	}
	var buf bytes.Buffer
	buf.WriteByte(compactMark)
	zw := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Deserialize implements securecookie.Serializer. securecookie calls it
// only after the payload's MAC has been checked.
func (compactJSON) Deserialize(src []byte, dst any) error {
	if len(src) > 0 && src[0] == compactMark {
		zr := flate.NewReader(bytes.NewReader(src[1:]))
		defer zr.Close()
		b, err := io.ReadAll(io.LimitReader(zr, maxInflated+1))
		if err != nil {
			return err
		}
		if len(b) > maxInflated {
			return errInflatedTooLarge
		}
		src = b
	}
	return securecookie.JSONEncoder{}.Deserialize(src, dst)
}
