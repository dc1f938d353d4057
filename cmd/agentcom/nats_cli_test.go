package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// natsCLIVersion is the nats CLI the tests run, as users would type it.
const natsCLIVersion = "github.com/nats-io/natscli/nats@v0.5.0"

var natsCLIOnce = sync.OnceValues(findOrInstallNatsCLI)

// natsCLI finds the nats CLI on PATH or in GOPATH/bin, or installs it from
// the Go module proxy into the user's cache, so that go test ./... works
// on a fresh machine.
func natsCLI(t *testing.T) string {
	t.Helper()
	p, err := natsCLIOnce()
	require.NoError(t, err, "the nats CLI is needed: go install "+natsCLIVersion)
	return p
}

func findOrInstallNatsCLI() (string, error) {
	if p, err := exec.LookPath("nats"); err == nil {
		return p, nil
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("read GOPATH: %w", err)
	}
	if p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "nats"); fileExists(p) {
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache dir: %w", err)
	}
	bin := filepath.Join(cache, "agentcom-test", "natscli-v0.5.0")
	if p := filepath.Join(bin, "nats"); fileExists(p) {
		return p, nil
	}
	cmd := exec.Command("go", "install", natsCLIVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("install %s: %w: %s", natsCLIVersion, err, out)
	}
	return filepath.Join(bin, "nats"), nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestAgentTokenIsRefusedEverywhereElse uses the nats CLI with an agent's
// token, as a person would: it cannot publish or subscribe on another
// agent's subjects, the event stream or the JetStream API; its own
// subjects work.
func TestAgentTokenIsRefusedEverywhereElse(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	out, _, code := cli(t, h, "token", "create", "mallory")
	require.Equal(t, 0, code)
	token := strings.TrimSpace(out)
	nats := natsCLI(t)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(nats, append([]string{"--server", h.natsURL, "--token", token, "--timeout", "2s"}, args...)...)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	refused := map[string][]string{
		"publish as another agent":     {"pub", "agentcom.agent.alice.complete", "{}"},
		"publish a domain event":       {"pub", "agentcom.evt.task.task-0000000000000000", "{}"},
		"publish a hub command":        {"pub", "agentcom.cmd.task.submit", `{"description":"x"}`},
		"publish telemetry":            {"pub", "agent_com.task.submit", "{}"},
		"subscribe to another agent":   {"sub", "agentcom.push.alice.>", "--count", "1"},
		"subscribe to domain events":   {"sub", "agentcom.evt.>", "--count", "1"},
		"list streams (JetStream API)": {"stream", "ls"},
	}
	for what, args := range refused {
		out, err := run(args...)
		require.Error(t, err, "%s was allowed: %s", what, out)
		require.Contains(t, strings.ToLower(out), "permission", what)
	}
	// Its own request subject and inbox are allowed: the hub answers (this
	// session never said hello).
	out, err := run("--inbox-prefix", "_INBOX.agent.mallory", "req", "agentcom.agent.mallory.heartbeat", `{"session":"none"}`)
	require.NoError(t, err, out)
	require.Contains(t, out, "unknown_session")
}
