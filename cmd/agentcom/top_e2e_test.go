package main

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// agentcom top draws the hub as it is; agentcom alerts lists the rules.
func TestTopAndAlertsFromTheCLI(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	startSidecar(t, h, "worker", "echo done", []string{"go"})
	h.waitTask(t, h.submitTask(t, `{"description":"one","needed_capabilities":["go"]}`), "completed", 30*time.Second)
	h.submitTask(t, `{"description":"nobody can","priority":"urgent","needed_capabilities":["quantum"]}`)
	out, errOut, code := cli(t, h, "top", "--once")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "queue 1 (")
	require.Contains(t, out, "urgent 1")
	require.Contains(t, out, "agents 1 online")
	require.Regexp(t, `worker\s+idle`, out)
	require.NotContains(t, out, clearScreen, "--once does not clear the screen")
	out, errOut, code = cli(t, h, "top", "--json")
	require.Equal(t, 0, code, errOut)
	var view struct{ Metrics, Agents, Alerts any }
	require.NoError(t, json.Unmarshal([]byte(out), &view))
	require.NotNil(t, view.Metrics)
	_, errOut, code = cli(t, h, "top", "--interval", "1ms")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "at least 100ms")

	out, errOut, code = cli(t, h, "alerts", "--json")
	require.Equal(t, 0, code, errOut)
	var alerts struct {
		Alerts []struct{ Rule, State string }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &alerts))
	require.Len(t, alerts.Alerts, 6)
	_, errOut, code = cli(t, h, "alerts", "ack", "no_agents_online")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "alert_not_active")

	code, body, err := h.get("/api/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1.0, body["queue_depth"].(map[string]any)["current"])
	resp, err := http.Get(h.httpURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, string(text), `agentcom_tasks_completed_total{priority="normal"} 1`)
}
