package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// natsCLI finds the nats CLI (.ci/run installs it: go install
// github.com/nats-io/natscli/nats@v0.5.0).
func natsCLI(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	require.NoError(t, err)
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "nats")
	_, err = os.Stat(p)
	require.NoError(t, err, "the nats CLI is needed: go install github.com/nats-io/natscli/nats@v0.5.0")
	return p
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
