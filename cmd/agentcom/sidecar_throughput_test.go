package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestOneSidecarProcessWorksThroughShortTasks: the real sidecar binary,
// one agent, 500 short tasks queued before it starts. A sidecar that
// declined work it could take (busy while its last report was on the
// way), and the hub's cooldown after it, would show as declined reclaims
// in the tasks' histories and a run of minutes. The rate is logged; the
// speed figure is BenchmarkSidecarOneAgent's (hub package).
func TestOneSidecarProcessWorksThroughShortTasks(t *testing.T) {
	t.Parallel()
	const n = 500
	h := startHubProc(t, t.TempDir())
	for i := range n {
		h.submitTask(t, fmt.Sprintf(`{"description":"short %d"}`, i))
	}
	start := time.Now()
	startSidecar(t, h, "solo", "true", nil)
	require.Eventually(t, func() bool { return liveStats(t, h)["completed"] == n }, 5*time.Minute, 50*time.Millisecond,
		"500 short tasks were not all completed")
	took := time.Since(start)
	t.Logf("one sidecar process: %d tasks in %v, %.0f tasks/s", n, took.Round(time.Millisecond), n/took.Seconds())

	resp, err := http.Get(h.httpURL + "/api/tasks?status=completed")
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Tasks []struct {
			ID           string `json:"id"`
			ReclaimCount int    `json:"reclaim_count"`
			History      []struct {
				Event  string `json:"event"`
				Detail string `json:"detail"`
			} `json:"history"`
		} `json:"tasks"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Len(t, out.Tasks, n)
	for _, task := range out.Tasks {
		require.Zero(t, task.ReclaimCount, task.ID)
		for _, e := range task.History {
			require.False(t, strings.HasPrefix(e.Detail, "declined"), "task %s was declined: %s", task.ID, e.Detail)
			require.NotEqual(t, "task.reclaimed", e.Event, "task %s was taken back: %s", task.ID, e.Detail)
		}
	}
}
