package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// agentcom admin rate-limits: set, list, exempt, clear, each in text and
// --json, and a clear of nothing is the hub's 404 (exit 2).
func TestCLIRateLimits(t *testing.T) {
	t.Parallel()
	h := startHubProc(t, t.TempDir())
	out, errOut, code := cli(t, h, "admin", "rate-limits", "set", "ops", "--heavy", "3", "--json")
	require.Equal(t, 0, code, errOut)
	var st struct {
		Defaults  map[string]int            `json:"defaults"`
		Overrides map[string]map[string]int `json:"overrides"`
		Exempt    []string                  `json:"exempt"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, map[string]int{"light": 120, "normal": 60, "heavy": 3}, st.Overrides["ops"])
	out, errOut, code = cli(t, h, "admin", "rate-limits", "exempt", "dash")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "dash       exempt")
	out, _, code = cli(t, h, "admin", "rate-limits", "list")
	require.Equal(t, 0, code)
	require.Contains(t, out, "(default)  120     60      10")
	require.Contains(t, out, "ops        120     60      3")
	_, _, code = cli(t, h, "admin", "rate-limits", "clear", "ops")
	require.Equal(t, 0, code)
	_, errOut, code = cli(t, h, "admin", "rate-limits", "clear", "ops")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "rate_limit_not_found")
	_, errOut, code = cli(t, h, "admin", "rate-limits", "set", "ops", "--heavy", "0")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "heavy: 0 a minute")
	_, errOut, code = cli(t, h, "admin", "reset", "nobody")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "agent_not_found")
	_, errOut, code = cli(t, h, "admin", "push-task", "nobody", "for nobody")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "agent_not_found")
}
