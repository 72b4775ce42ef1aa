//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// oauth2Proxy is a running oauth2-proxy contender.
type oauth2Proxy struct {
	cmd     *exec.Cmd
	exited  chan error
	logName string
}

// oauth2ProxyArgs configures oauth2-proxy as the closest equivalent of
// the jit_auth site: OIDC login at the same provider, the session sealed
// in a cookie (no Redis), every authenticated request proxied to the same
// upstream, and no per-request logging (the Caddy contenders discard
// theirs). Everything else is oauth2-proxy's default, in particular the
// identity headers it adds upstream (X-Forwarded-User, -Email,
// -Preferred-Username, -Groups, and Authorization: Basic with
// --pass-basic-auth) and no cookie refresh (the session is only decrypted
// and checked for expiry per request, as jit_auth does).
//
// --reverse-proxy is left off: like the Caddy sites, oauth2-proxy is the
// first hop here (wrk talks to it directly), so it must not trust
// X-Forwarded-* or X-Real-IP from clients.
func oauth2ProxyArgs(listenURL, issuer, upstream string, cookieSecret string) ([]string, error) {
	u, err := url.Parse(listenURL)
	if err != nil {
		return nil, err
	}
	return []string{
		"--http-address=" + u.Host,
		"--provider=oidc",
		"--oidc-issuer-url=" + issuer,
		"--client-id=" + oauth2ClientID,
		"--client-secret=" + oauth2ClientSecret,
		"--redirect-url=" + listenURL + "oauth2/callback",
		"--upstream=http://" + upstream + "/",
		"--cookie-name=" + oauth2CookieName,
		"--cookie-secret=" + cookieSecret,
		"--cookie-secure=false", // plain HTTP on loopback, as the Caddy sites
		"--session-store-type=cookie",
		"--email-domain=*",
		"--skip-provider-button",
		"--request-logging=false",
		"--auth-logging=false",
		"--standard-logging=false",
		"--banner=-",
	}, nil
}

// startOAuth2Proxy runs bin (oauth2-proxy v7) on listenURL in front of
// upstream, logging to dir/oauth2-proxy.log, and waits until it answers.
// It dies with setup (Pdeathsig).
func startOAuth2Proxy(ctx context.Context, bin, dir, listenURL, issuer, upstream string) (*oauth2Proxy, error) {
	// 32 random bytes, URL-safe base64, as oauth2-proxy's documentation
	// generates them: an AES-256 key.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	args, err := oauth2ProxyArgs(listenURL, issuer, upstream, base64.URLEncoding.EncodeToString(secret))
	if err != nil {
		return nil, err
	}
	logName := filepath.Join(dir, "oauth2-proxy.log")
	logFile, err := os.Create(logName)
	if err != nil {
		return nil, err
	}
	// The child has its own copy of the descriptor.
	defer logFile.Close()

	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// No OAUTH2_PROXY_* from the caller's environment.
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting oauth2-proxy: %w", err)
	}
	p := &oauth2Proxy{cmd: cmd, exited: make(chan error, 1), logName: logName}
	go func() { p.exited <- cmd.Wait() }()
	if err := waitServingProc(ctx, "oauth2-proxy", listenURL+"ping", p.exited); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w (see %s)", err, logName)
	}
	return p, nil
}

// stop asks oauth2-proxy to stop and kills it if it does not within 5s.
func (p *oauth2Proxy) stop() {
	select {
	case err := <-p.exited:
		p.exited <- err
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
