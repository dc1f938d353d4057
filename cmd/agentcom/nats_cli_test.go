package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
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

// TestAdminTokenCannotWriteOrRemoveEvents uses the nats CLI with the
// admin token against the real hub: every purge, delete, edit, raw event
// publish and steered reply is refused; afterwards the hub still lists
// every task, and an offline replay of its store agrees.
func TestAdminTokenCannotWriteOrRemoveEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubProc(t, dir)
	var ids []string
	for i := range 3 {
		ids = append(ids, h.submitTask(t, fmt.Sprintf(`{"description":"kept %d"}`, i)))
	}
	nats := natsCLI(t)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(nats, append([]string{"--server", h.natsURL, "--token", h.token, "--timeout", "2s"}, args...)...)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	refused := map[string][]string{
		"purge the event stream":    {"stream", "purge", broker.EventsStream, "-f"},
		"purge one task's events":   {"stream", "purge", broker.EventsStream, "-f", "--subject", broker.TaskEvents(ids[0])},
		"remove the event stream":   {"stream", "rm", broker.EventsStream, "-f"},
		"edit the event stream":     {"stream", "edit", broker.EventsStream, "--max-msgs", "1", "-f"},
		"remove the LOGS stream":    {"stream", "rm", broker.LogsStream, "-f"},
		"delete the token bucket":   {"kv", "del", broker.TokensBucket, "-f"},
		"publish an event":          {"pub", broker.TaskEvents(ids[0]), "{}"},
		"roll up a task's events":   {"pub", broker.TaskEvents(ids[1]), "{}", "-H", "Nats-Rollup:sub"},
		"steer a JS API answer":     {"pub", "$JS.API.INFO", "", "--reply", broker.TaskEvents(ids[2])},
		"list streams (JetStream)":  {"stream", "ls"},
		"write a token bucket key":  {"pub", "$KV." + broker.TokensBucket + ".x", "{}"},
		"delete one event (msg rm)": {"stream", "rmm", broker.EventsStream, "1", "-f"},
	}
	for what, args := range refused {
		out, err := run(args...)
		require.Error(t, err, "%s was allowed: %s", what, out)
		require.Contains(t, strings.ToLower(out), "permission", what)
	}
	// A command whose reply subject would steer the hub's answer onto the
	// event stream or the JetStream API is dropped, not answered there.
	for _, reply := range []string{broker.TaskEvents(ids[0]), "$JS.API.STREAM.PURGE." + broker.EventsStream} {
		out, err := run("pub", broker.Command(broker.CmdTaskList), "{}", "--reply", reply)
		require.NoError(t, err, out)
	}
	require.Eventually(t, func() bool { return h.count("command with a reply subject outside _INBOX dropped") == 2 },
		10*time.Second, 20*time.Millisecond)
	// What an admin needs still works: commands, and kept telemetry.
	out, err := run("req", broker.Command(broker.CmdTaskList), "{}")
	require.NoError(t, err, out)
	for _, id := range ids {
		require.Contains(t, out, id)
	}
	listed := h.list(t)
	require.Len(t, listed, 3, "every task is still there")

	h.terminate(t)
	out, errOut, code := cli(t, h, "replay", "--data-dir", dir, "--json")
	require.Equal(t, 0, code, errOut)
	var res struct {
		StreamLastSeq uint64 `json:"stream_last_seq"`
		State         struct {
			Tasks []struct {
				ID string `json:"id"`
			} `json:"tasks"`
		} `json:"state"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.EqualValues(t, 3, res.StreamLastSeq, "the three submits, nothing written past the hub")
	var replayed []string
	for _, task := range res.State.Tasks {
		replayed = append(replayed, task.ID)
	}
	require.ElementsMatch(t, ids, replayed, "an offline replay agrees with the hub")
}
