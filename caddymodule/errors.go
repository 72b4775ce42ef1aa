package caddymodule

import (
	"errors"
	"net/url"
)

// redactErr strips URLs' query strings from transport errors: a
// *url.Error prints the request URL, which for some providers carries
// a token or code (S13).
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u, perr := url.Parse(ue.URL)
		if perr == nil {
			u.RawQuery = ""
			u.User = nil
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
		return errors.New(ue.Op + ": " + ue.Err.Error())
	}
	return err
}
