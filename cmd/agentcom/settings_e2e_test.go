package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// One step onboards an agent: agent add writes a sidecar configuration
// that runs as written. A run-time heartbeat change then reaches that
// running sidecar without a restart of either, and the hub keeps it
// across its own restart.
func TestOnboardedSidecarRunsAndHearsRunTimeSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"AGENTCOM_AGENTS_HEARTBEAT_INTERVAL=200ms"}
	h := startHubProcOn(t, dir, "127.0.0.1:0", env)
	conf := filepath.Join(t.TempDir(), "builder.yaml")
	out, errOut, code := cli(t, h, "agent", "add", "builder", "--capability", "go", "--exec", "echo built", "--out", conf, "--json")
	require.Equal(t, 0, code, errOut)
	var added map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &added), out)
	require.Equal(t, conf, added["config_file"])
	require.NotContains(t, out, "ac_", "the token goes to the file only")
	fi, err := os.Stat(conf)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	_, errOut, code = cli(t, h, "agent", "add", "builder", "--out", conf+".again")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "agent_already_registered")
	require.NoFileExists(t, conf+".again", "a refused registration leaves no file")
	_, errOut, code = cli(t, h, "agent", "add", "other", "--out", conf)
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "file exists", "an existing file is never overwritten")

	s := startSidecarArgs(t, "builder", "sidecar", "--config", conf, "--state-dir", filepath.Join(t.TempDir(), "state"))
	id := h.submitTask(t, `{"description":"build","needed_capabilities":["go"]}`)
	h.waitTask(t, id, "completed", 30*time.Second)

	out, errOut, code = cli(t, h, "config", "set", "agents.heartbeat_interval", "300ms", "--json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"value": "300ms"`)
	require.Eventually(t, func() bool {
		return strings.Contains(s.stdout(), `"message":"hub changed the heartbeat interval"`)
	}, 30*time.Second, 20*time.Millisecond, "the running sidecar takes the new interval")

	h.terminate(t)
	out, errOut, code = cli(t, h, "replay", "--data-dir", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "run-time settings in force:\n  agents.heartbeat_interval = 300ms", "replay shows the change")
	h = startHubProcOn(t, dir, "127.0.0.1:0", env)
	out, errOut, code = cli(t, h, "config", "get")
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `agents\.heartbeat_interval\s+300ms\s+run-time\s+200ms`, out)
	out, errOut, code = cli(t, h, "config", "reset", "agents.heartbeat_interval", "--json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"source": "file"`)
	_, errOut, code = cli(t, h, "config", "set", "agents.heartbeat_interval", "soon")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, `"soon" is not a duration`)
}

// admin call reaches every operation by its command name.
func TestAdminCallReachesAnyOperation(t *testing.T) {
	t.Parallel()
	h := startHubProc(t, t.TempDir())
	out, errOut, code := cli(t, h, "admin", "call", "config.get", `{"key":"agents.stuck_threshold"}`)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"value": "10m"`)
	out, errOut, code = cli(t, h, "admin", "call", "api.schemas")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"config.set"`)
	_, errOut, code = cli(t, h, "admin", "call", "task.teleport")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, `unknown command "task.teleport": use one of hub.health`)
	_, errOut, code = cli(t, h, "admin", "call", "task.get", "{id")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "is not JSON")
	out, errOut, code = cli(t, h, "admin", "log-level", "debug", "--module", "agents", "--json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"module": "agents"`)
	out, errOut, code = cli(t, h, "admin", "log-level")
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `agents\s+debug`, out)
}
