package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A real sidecar's command reports what each task cost through
// AGENTCOM_USAGE_FILE; GET /api/usage (and agentcom usage) sums it, the
// task carries it, and once the agent's day reaches its budget nothing
// more is assigned to it, until its own budget is raised at run time.
func TestUsageIsSummedAndABudgetStopsAssignment(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", []string{"AGENTCOM_AGENTS_DAILY_BUDGET_USD=0.05"})
	startSidecar(t, h, "a1",
		`printf '{"input_tokens":100,"output_tokens":20,"cost_usd":0.03,"model":"test-model"}' > "$AGENTCOM_USAGE_FILE"; echo done`, nil)
	first := h.submitTask(t, `{"description":"one"}`)
	h.waitTask(t, first, "completed", 30*time.Second)
	second := h.submitTask(t, `{"description":"two"}`)
	h.waitTask(t, second, "completed", 30*time.Second)

	code, task, err := h.get("/api/tasks/" + first)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{"input_tokens": 100.0, "output_tokens": 20.0, "cost_usd": 0.03, "model": "test-model"},
		task["usage"])

	out, errOut, exit := cli(t, h, "usage", "--json")
	require.Equal(t, 0, exit, errOut)
	var u struct {
		Days []struct {
			Day     string  `json:"day"`
			AgentID string  `json:"agent_id"`
			Tasks   int     `json:"tasks"`
			Input   int64   `json:"input_tokens"`
			Output  int64   `json:"output_tokens"`
			Cost    float64 `json:"cost_usd"`
		} `json:"days"`
		Total struct {
			Tasks int     `json:"tasks"`
			Cost  float64 `json:"cost_usd"`
		} `json:"total"`
		OverBudget []string `json:"over_budget"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &u))
	require.Len(t, u.Days, 1)
	require.Equal(t, "a1", u.Days[0].AgentID)
	require.Equal(t, time.Now().UTC().Format(time.DateOnly), u.Days[0].Day)
	require.Equal(t, 2, u.Days[0].Tasks)
	require.Equal(t, int64(200), u.Days[0].Input)
	require.Equal(t, int64(40), u.Days[0].Output)
	require.InDelta(t, 0.06, u.Total.Cost, 1e-9)
	require.Equal(t, []string{"a1"}, u.OverBudget, "0.06 spent of a 0.05 budget")

	// Over its budget, the idle agent is given nothing: the scheduler's
	// safety pass runs every second, so three seconds see three passes.
	third := h.submitTask(t, `{"description":"three"}`)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		require.Equal(t, "queued", h.task(t, third).Status, "assigned over the budget")
		time.Sleep(100 * time.Millisecond)
	}

	// The agent's own budget, raised while the hub runs, lets it work again.
	_, errOut, exit = cli(t, h, "config", "set", "agents.budgets.a1", "1")
	require.Equal(t, 0, exit, errOut)
	h.waitTask(t, third, "completed", 30*time.Second)
	out, errOut, exit = cli(t, h, "usage", "--json")
	require.Equal(t, 0, exit, errOut)
	var after struct {
		Default    float64            `json:"daily_budget_usd"`
		Budgets    map[string]float64 `json:"budgets"`
		OverBudget []string           `json:"over_budget"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &after))
	require.Equal(t, 0.05, after.Default)
	require.Equal(t, map[string]float64{"a1": 1}, after.Budgets)
	require.Empty(t, after.OverBudget, "0.09 of its own 1.00")
}
