package caddymodule_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A login may take up to its flow's ten minutes at the provider
// (flowLifetime; S4), however short session_lifetime is (at least 1m):
// the session's lifetime bounds the session, not the sign-in that makes
// it. The cookies that carry a login (flow, pending login) are sealed
// with the session's codecs, whose timestamp check was session_lifetime,
// so with session_lifetime 1m a user who took more than a minute at the
// provider (a password reset, the provider's own second factor) came
// back to "sign-in expired".
func TestALoginOutlastsAShortSessionLifetime(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a minute at the provider")
	}
	s := startSiteOpts(t, siteOptions{globalExtra: "\t\tsession_lifetime 1m"})
	b := newBrowser(t)
	s.queue(alice())
	site, _ := url.Parse(s.base)
	resp, _, _ := b.follow(s.base+"/.jitauth/start/corp?rd=/slow", func(u *url.URL) bool { return u.Host != site.Host })
	atProvider, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("start: %d %v", resp.StatusCode, err)
	}
	time.Sleep(62 * time.Second) // the user at the provider, well within the flow's 10 minutes
	resp, body, visited := b.follow(atProvider.String(), nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw") {
		t.Fatalf("a login that took a minute at the provider, with session_lifetime 1m: %d %.300s (visited %v)", resp.StatusCode, body, visited)
	}
}
