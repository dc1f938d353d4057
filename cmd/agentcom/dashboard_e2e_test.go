package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromium finds Debian's Chromium. Without it the browser test is
// skipped, unless AGENTCOM_REQUIRE_BROWSER is set (as .ci/run, which
// installs it, sets it): then its absence fails.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("AGENTCOM_REQUIRE_BROWSER") != "" {
		t.Fatal("no chromium on PATH, and AGENTCOM_REQUIRE_BROWSER is set: apt-get install chromium")
	}
	t.Skip("no chromium on PATH: apt-get install chromium to run the browser test")
	return ""
}

// browser opens a headless Chromium and collects its console errors and
// uncaught exceptions.
func browser(t *testing.T, exe string) (context.Context, func() []string) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1100))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	var mu sync.Mutex
	var errs []string
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				errs = append(errs, fmt.Sprintf("console.error %v", ev.Args))
			}
		case *runtime.EventExceptionThrown:
			errs = append(errs, "exception: "+ev.ExceptionDetails.Text)
		}
	}))
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), errs...) }
}

// waitText waits until the page's element sel holds want, within d.
func waitText(t *testing.T, ctx context.Context, sel, want string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	js := fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.includes(%q)`, sel, want)
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(20*time.Millisecond)))
	require.NoError(t, err, "%s never showed %q", sel, want)
}

// The dashboard in a real browser against the real binary and a real
// sidecar: it loads without console errors, shows the agent and a queued
// task, shows a completion within a second of it, retries a dead-lettered
// task with its button, and comes back by itself after the hub restarts.
func TestDashboardInABrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	dir, natsAddr, httpAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	start := func() *hubProc {
		cmd := exec.Command(bin, "hub", "--data-dir", dir, "--nats-listen", natsAddr, "--http-listen", httpAddr)
		cmd.Env = append(os.Environ(), fastAgents...)
		return startHubCmd(t, cmd, dir)
	}
	h := start()
	flag := filepath.Join(t.TempDir(), "fail")
	require.NoError(t, os.WriteFile(flag, nil, 0o600))
	startSidecar(t, h, "worker", `if [ -e `+flag+` ] && [ "$AGENTCOM_TASK_DESCRIPTION" = "flaky" ]; then exit 1; fi; echo built`,
		[]string{"go"})
	ctx, consoleErrors := browser(t, exe)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(h.httpURL+"/dashboard#token="+h.token)))
	waitText(t, ctx, "#agents", "worker", 15*time.Second)
	waitText(t, ctx, "#status", "live", 15*time.Second)
	queued := h.submitTask(t, `{"description":"needs a quantum computer","needed_capabilities":["quantum"]}`)
	waitText(t, ctx, "#queue", queued, 5*time.Second)

	built := h.submitTask(t, `{"description":"build it","needed_capabilities":["go"]}`)
	h.waitTask(t, built, "completed", 30*time.Second)
	waitText(t, ctx, "#done", built, time.Second) // live: within a second of the completion

	flaky := h.submitTask(t, `{"description":"flaky","max_retries":0,"needed_capabilities":["go"]}`)
	h.waitTask(t, flaky, "dead_letter", 30*time.Second)
	waitText(t, ctx, "#dead", flaky, 5*time.Second)
	require.NoError(t, os.Remove(flag))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-retry="`+flaky+`"]`))))
	h.waitTask(t, flaky, "completed", 30*time.Second)

	h.terminate(t)
	waitText(t, ctx, "#status", "reconnecting", 15*time.Second)
	h = start()
	again := h.submitTask(t, `{"description":"after the restart","needed_capabilities":["quantum"]}`)
	waitText(t, ctx, "#status", "live", 30*time.Second)
	waitText(t, ctx, "#queue", again, 15*time.Second)

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	out := artifact(t, "dashboard.png", shot)
	t.Logf("screenshot: %s", out)
	require.Empty(t, consoleErrors(), "the page wrote console errors")
	require.Empty(t, strings.TrimSpace(strings.Join(consoleErrors(), "")))
}

// artifact keeps a test's file in $AGENTCOM_ARTIFACTS (default: a folder
// in the system's temp dir) and returns its path.
func artifact(t *testing.T, name string, data []byte) string {
	t.Helper()
	dir := os.Getenv("AGENTCOM_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "agentcom-artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}
