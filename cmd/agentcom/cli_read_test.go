package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

// TestEveryClientCommandHasJSON walks the command tree: every command
// that asks the hub or reads a store has --json; only the long-running
// hub, sidecar and MCP server (which speaks JSON-RPC on stdout) do not.
func TestEveryClientCommandHasJSON(t *testing.T) {
	t.Parallel()
	noJSON := map[string]bool{"agentcom hub": true, "agentcom sidecar": true, "agentcom help": true,
		"agentcom completion": true, "agentcom mcp": true}
	var leaves []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if noJSON[c.CommandPath()] || strings.HasPrefix(c.CommandPath(), "agentcom completion") {
			return
		}
		if !c.HasSubCommands() {
			leaves = append(leaves, c)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	root := newRoot()
	root.InitDefaultCompletionCmd()
	walk(root)
	require.Greater(t, len(leaves), 15)
	for _, c := range leaves {
		require.NotNil(t, c.Flags().Lookup("json"), "%s has no --json", c.CommandPath())
	}
}

// TestCLIReadCommandsJSONAndText: task show prints the result and the last
// error; stats and the dead letter are CLI commands; every read command's
// --json is the hub's reply; the agent's token goes by file.
func TestCLIReadCommandsJSONAndText(t *testing.T) {
	t.Parallel()
	h := startHubProc(t, t.TempDir())
	tokenFile := filepath.Join(t.TempDir(), "a1.token")
	out, errOut, code := cli(t, h, "token", "create", "a1", "--out", tokenFile)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "token of a1 written to "+tokenFile+"\n", out)
	info, err := os.Stat(tokenFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	tok, err := os.ReadFile(tokenFile)
	require.NoError(t, err)
	token := strings.TrimSpace(string(tok))
	require.Regexp(t, `^ac_[A-Za-z0-9_-]{43}$`, token)

	script := `if [ "$AGENTCOM_TASK_DESCRIPTION" = fail ]; then echo "disk full on /srv" >&2; exit 3; fi; ` +
		`printf 'line one\nline two for %s\n' "$AGENTCOM_TASK_DESCRIPTION"`
	sc := startSidecarArgs(t, "a1", "sidecar", "--agent-id", "a1", "--token-file", tokenFile, "--hub", h.natsURL,
		"--exec", script, "--state-dir", filepath.Join(t.TempDir(), "state"))
	argv, err := os.ReadFile("/proc/" + strconv.Itoa(sc.cmd.Process.Pid) + "/cmdline")
	require.NoError(t, err)
	require.NotContains(t, string(argv), token, "the token is not in the sidecar's argv")

	okID := submit(t, h, "ok")
	failID := submit(t, h, "fail", "--max-retries", "0")
	waitStatus(t, h, okID, "completed")
	waitStatus(t, h, failID, "dead_letter")

	out, _, code = cli(t, h, "task", "show", okID)
	require.Equal(t, 0, code)
	require.Contains(t, out, "result:\n  line one\n  line two for ok\n", "the result, line by line")
	require.Regexp(t, `(?m)^last error\s+-$`, out)
	out, _, code = cli(t, h, "task", "show", failID)
	require.Equal(t, 0, code)
	require.Regexp(t, `(?m)^last error\s+disk full on /srv$`, out)
	require.Contains(t, out, "result:\n  -\n")

	out, _, code = cli(t, h, "task", "dead-letter")
	require.Equal(t, 0, code)
	require.Contains(t, out, failID)
	require.Contains(t, out, "disk full on /srv")
	require.NotContains(t, out, okID)
	var dl struct {
		Tasks []struct {
			ID        string `json:"id"`
			LastError string `json:"last_error"`
		} `json:"tasks"`
		Count int `json:"count"`
	}
	jsonOut(t, h, &dl, "task", "dlq", "--json")
	require.Equal(t, 1, dl.Count)
	require.Equal(t, failID, dl.Tasks[0].ID)

	out, _, code = cli(t, h, "task", "stats")
	require.Equal(t, 0, code)
	require.Regexp(t, `(?m)^completed\s+1$`, out)
	require.Regexp(t, `(?m)^dead_letter\s+1$`, out)
	require.Contains(t, out, "tasks 2 ")
	var stats struct {
		Total    int            `json:"total"`
		ByStatus map[string]int `json:"by_status"`
	}
	jsonOut(t, h, &stats, "task", "stats", "--json")
	require.Equal(t, 2, stats.Total)
	require.Equal(t, 1, stats.ByStatus["dead_letter"])

	// Changes answer with the hub's reply under --json.
	var reply map[string]any
	jsonOut(t, h, &reply, "task", "retry", failID, "--json")
	require.Equal(t, map[string]any{"status": "requeued", "task_id": failID, "priority": "normal"}, reply)
	waitStatus(t, h, failID, "dead_letter")
	reply = nil
	jsonOut(t, h, &reply, "task", "cancel", failID, "--json")
	require.Equal(t, "cancelled", reply["status"])
	require.Equal(t, failID, reply["task_id"])

	checkTokenAndStoreJSON(t, h)
	require.NotContains(t, sc.stdout(), token)
}

// checkTokenAndStoreJSON: token list and revoke, store-health, compact and
// backup print the hub's replies with --json, and text without.
func checkTokenAndStoreJSON(t *testing.T, h *hubProc) {
	var tokens struct {
		Tokens []map[string]string `json:"tokens"`
		Count  int                 `json:"count"`
	}
	jsonOut(t, h, &tokens, "token", "list", "--json")
	require.Equal(t, 1, tokens.Count)
	require.Equal(t, "a1", tokens.Tokens[0]["agent_id"])

	var health map[string]any
	jsonOut(t, h, &health, "store-health", "--json")
	require.Contains(t, health, "status")
	require.Contains(t, health, "streams")
	out, _, code := cli(t, h, "store-health")
	require.Equal(t, 0, code)
	require.Contains(t, out, "status: "+health["status"].(string)+"\n")
	require.Regexp(t, `(?m)^AGENTCOM_EVENTS\s+\d+`, out)

	var compact map[string]any
	jsonOut(t, h, &compact, "compact", "--json")
	require.Equal(t, "complete", compact["status"])
	require.Contains(t, compact["result"], "events_before")
	out, _, code = cli(t, h, "compact")
	require.Equal(t, 0, code)
	require.Regexp(t, `^compacted 0 tasks finished before \S+ \(0 failed\); events [1-9]\d* -> [1-9]\d*\n$`, out)

	var backup map[string]any
	jsonOut(t, h, &backup, "backup", "--json")
	require.Equal(t, "complete", backup["status"])
	require.FileExists(t, backup["path"].(string))

	var revoked map[string]any
	jsonOut(t, h, &revoked, "token", "revoke", "a1", "--json")
	require.Equal(t, map[string]any{"status": "revoked", "agent_id": "a1", "name": "a1", "role": "agent"}, revoked)
}

// TestCLISaysWhatIsWrong: a bad agent id is explained, not called
// missing; a mistyped subcommand fails with a suggestion.
func TestCLISaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	h := startHubProc(t, t.TempDir())
	_, errOut, code := cli(t, h, "token", "create", "bad.id")
	require.Equal(t, 2, code, "the hub refused it")
	require.Contains(t, errOut, `name: "bad.id" may hold only letters, digits, '_' and '-'`)
	require.Contains(t, errOut, `'.' is not allowed`)
	require.NotContains(t, errOut, "required")
	_, errOut, code = cli(t, h, "token", "create", strings.Repeat("a", 129))
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "name: 129 characters, at most 128")

	// A bad --out path fails before the hub replaces the agent's token.
	out, errOut, code := cli(t, h, "token", "create", "keep")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = cli(t, h, "token", "create", "keep", "--out", filepath.Join(t.TempDir(), "no", "such", "dir"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "open token file")
	var tokens struct{ Tokens []map[string]string }
	jsonOut(t, h, &tokens, "token", "list", "--json")
	require.Len(t, tokens.Tokens, 1)
	require.True(t, strings.HasPrefix(strings.TrimSpace(out), strings.TrimSuffix(tokens.Tokens[0]["token_prefix"], "...")),
		"the old token is still the agent's")

	for args, want := range map[string]string{
		"task lst":             "list",
		"task lst --json":      "list",
		"task stat":            "stats",
		"task dead":            "dead-letter",
		"agent shw":            "show",
		"token revok agent-id": "revoke",
	} {
		out, errOut, code := cli(t, h, strings.Fields(args)...)
		require.Equal(t, 1, code, args)
		require.Empty(t, out, args)
		group := strings.Fields(args)[0]
		require.Contains(t, errOut, `unknown command "`+strings.Fields(args)[1]+`" for "agentcom `+group+`"`, args)
		require.Contains(t, errOut, "Did you mean this?\n\t"+want+"\n", args)
	}
	for _, args := range [][]string{{"task"}, {"task", "help"}} {
		out, _, code = cli(t, h, args...)
		require.Equal(t, 0, code, "%v prints the group's help", args)
		require.Contains(t, out, "dead-letter")
	}
}

func submit(t *testing.T, h *hubProc, desc string, args ...string) string {
	t.Helper()
	out, errOut, code := cli(t, h, append([]string{"task", "submit", desc}, args...)...)
	require.Equal(t, 0, code, errOut)
	return strings.TrimSpace(out)
}

func waitStatus(t *testing.T, h *hubProc, id, status string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var task struct{ Status string }
		out, _, code := cli(t, h, "task", "show", id, "--json")
		return code == 0 && json.Unmarshal([]byte(out), &task) == nil && task.Status == status
	}, 60*time.Second, 50*time.Millisecond, "%s becomes %s", id, status)
}

// jsonOut runs a CLI command that must succeed and decodes its stdout.
func jsonOut(t *testing.T, h *hubProc, v any, args ...string) {
	t.Helper()
	out, errOut, code := cli(t, h, args...)
	require.Equal(t, 0, code, "%v: %s", args, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), v), "%v printed %q", args, out)
}

func TestCLISubmitsADelayedTask(t *testing.T) {
	t.Parallel()
	h := startHubProc(t, t.TempDir())
	id := submit(t, h, "later", "--in", "1h", "--retry-base", "5s", "--retry-max", "1m")
	var task struct {
		RunAfter  time.Time `json:"run_after"`
		RetryBase string    `json:"retry_base"`
		RetryMax  string    `json:"retry_max"`
	}
	jsonOut(t, h, &task, "task", "show", id, "--json")
	require.WithinDuration(t, time.Now().Add(time.Hour), task.RunAfter, 5*time.Minute)
	require.Equal(t, "5s", task.RetryBase)
	require.Equal(t, "1m0s", task.RetryMax)
	out, _, code := cli(t, h, "task", "show", id)
	require.Equal(t, 0, code)
	require.Regexp(t, `(?m)^run after\s+\S+$`, out)
	out, _, code = cli(t, h, "task", "list")
	require.Equal(t, 0, code)
	require.Contains(t, out, "queued until "+task.RunAfter.Format(time.RFC3339))

	_, errOut, code := cli(t, h, "task", "submit", "x", "--in", "1h", "--run-at", "2030-01-01T00:00:00Z")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--run-at and --in: give one, not both")
	_, errOut, code = cli(t, h, "task", "submit", "x", "--retry-base", "soon")
	require.Equal(t, 2, code, "the hub refused it")
	require.Contains(t, errOut, "retry_base")
}
