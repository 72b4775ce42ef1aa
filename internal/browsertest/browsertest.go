// Package browsertest starts the headless Chromium that the browser tests
// drive, with one set of conventions: Debian's chromium package at
// /usr/bin/chromium; a test skips only when JITAUTH_TEST_CHROMIUM is unset
// and chromium is missing, and with it set (CI sets it to 1) a missing
// chromium fails the test; JITAUTH_SCREENSHOTS, if set, names a directory
// for screenshots.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	// ChromiumPath is where Debian's chromium package installs the browser.
	ChromiumPath = "/usr/bin/chromium"
	// Env, when set, makes the browser tests mandatory.
	Env = "JITAUTH_TEST_CHROMIUM"
	// ScreenshotsEnv names a directory for screenshots, when set.
	ScreenshotsEnv = "JITAUTH_SCREENSHOTS"
	// Timeout bounds a browser's whole life in one test.
	Timeout = 60 * time.Second
)

// Require skips or fails t when Chromium cannot be used, as the package
// comment says.
func Require(t testing.TB) {
	t.Helper()
	fi, err := os.Stat(ChromiumPath)
	if err == nil && (fi.IsDir() || fi.Mode()&0o111 == 0) {
		err = errors.New("not an executable file")
	}
	if err == nil {
		return
	}
	if _, set := os.LookupEnv(Env); set {
		t.Fatalf("%s is set, but %s cannot be used: %v (apt-get install chromium)", Env, ChromiumPath, err)
	}
	t.Skipf("%s cannot be used (%v): install Debian's chromium package to run this test; set %s=1 to make it mandatory", ChromiumPath, err, Env)
}

// Start starts a headless Chromium with a fresh profile, for at most
// Timeout, and returns the context of its first tab. The browser stops at
// the end of the test. Chromium's and chromedp's output go to the test
// log if the test fails (not straight to t.Logf: chromedp can log from its
// goroutines after the test ended).
func Start(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)

	var output lockedBuffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
		chromedp.CombinedOutput(&output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	logf := func(format string, args ...any) { fmt.Fprintf(&output, "chromedp: "+format+"\n", args...) }
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits until chromium has exited
		if t.Failed() && output.Len() > 0 {
			t.Logf("chromium output:\n%s", output.String())
		}
	})
	// Start the browser now, so that a broken installation fails here.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting %s: %v", ChromiumPath, err)
	}
	return tab
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
