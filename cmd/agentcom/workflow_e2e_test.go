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

// at is when the task's history first has event.
func (f fullTask) at(t *testing.T, event string) time.Time {
	t.Helper()
	for _, e := range f.History {
		if e.Event == event {
			return e.At
		}
	}
	t.Fatalf("task %s has no %s in its history", f.ID, event)
	return time.Time{}
}

// batch submits tasks in one batch and returns their ids in order.
func (h *hubProc) batch(t *testing.T, tasks ...string) []string {
	t.Helper()
	code, out, err := h.post("/api/tasks/batch", `{"tasks":[`+strings.Join(tasks, ",")+`]}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code, out)
	var ids []string
	for _, task := range out["tasks"].([]any) {
		ids = append(ids, task.(map[string]any)["task_id"].(string))
	}
	return ids
}

// goalCounts are a goal's task counts by status, as GET /api/goals/{id}
// answers, and its status.
func (h *hubProc) goalCounts(t *testing.T, id string) (map[string]any, string) {
	t.Helper()
	code, out, err := h.get("/api/goals/" + id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, out)
	return out["counts"].(map[string]any), out["status"].(string)
}

// TestADiamondRunsInDependencyOrderThroughARealSidecar submits a diamond
// (a; b and c after a; d after b and c) in one batch to a real sidecar
// that runs two tasks at once: each starts only after what it depends on
// completed, d's command reads b's and c's results from its push, and the
// goal's counts follow. A failed dependency cancels its dependent, and an
// unknown id or a cycle is refused with the field named.
func TestADiamondRunsInDependencyOrderThroughARealSidecar(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	task := func(ref, script string, deps ...string) string {
		b, err := json.Marshal(map[string]any{"ref": ref, "description": script, "needed_capabilities": []string{"flow"},
			"depends_on": deps, "goal_id": "release-1", "max_retries": 0})
		require.NoError(t, err)
		return string(b)
	}
	echo := `printf '{"deps":%s}' "$AGENTCOM_TASK_DEPENDENCIES"`
	ids := h.batch(t, task("a", echo), task("b", echo, "a"), task("c", echo, "a"), task("d", echo, "b", "c"))
	counts, status := h.goalCounts(t, "release-1")
	require.Equal(t, map[string]any{"queued": 1.0, "waiting": 3.0}, counts)
	require.Equal(t, "open", status)

	startSidecar(t, h, "flow-1", `eval "$AGENTCOM_TASK_DESCRIPTION"`, []string{"flow"}, "--max-tasks", "2")
	d := h.waitTask(t, ids[3], "completed", 60*time.Second)
	tasks := make([]fullTask, 4)
	for i, id := range ids {
		tasks[i] = h.task(t, id)
		require.Equal(t, "completed", tasks[i].Status, id)
	}
	for _, edge := range [][2]int{{1, 0}, {2, 0}, {3, 1}, {3, 2}} { // dependent, dependency
		dep, on := tasks[edge[0]], tasks[edge[1]]
		require.False(t, dep.at(t, "task.assigned").Before(on.at(t, "task.completed")),
			"%s was assigned before %s completed", dep.ID, on.ID)
		require.Contains(t, dep.History[1].Detail, "waiting on")
	}
	var result struct {
		Deps []struct {
			TaskID string          `json:"task_id"`
			Status string          `json:"status"`
			Result json.RawMessage `json:"result"`
		} `json:"deps"`
	}
	require.NoError(t, json.Unmarshal(d.Result, &result), string(d.Result))
	require.Len(t, result.Deps, 2)
	for i, dep := range result.Deps {
		require.Equal(t, ids[i+1], dep.TaskID)
		require.Equal(t, "completed", dep.Status)
		require.JSONEq(t, string(tasks[i+1].Result), string(dep.Result), "d read %s's result from its push", dep.TaskID)
	}
	require.Eventually(t, func() bool {
		counts, status = h.goalCounts(t, "release-1")
		return status == "completed"
	}, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, map[string]any{"completed": 4.0}, counts)

	failing := h.batch(t,
		`{"ref":"tests","description":"exit 3","needed_capabilities":["flow"],"max_retries":0,"goal_id":"release-2"}`,
		fmt.Sprintf(`{"ref":"deploy","description":%q,"needed_capabilities":["flow"],"depends_on":["tests"],"goal_id":"release-2"}`, echo))
	h.waitTask(t, failing[0], "dead_letter", 30*time.Second)
	h.waitTask(t, failing[1], "cancelled", 30*time.Second)
	require.Eventually(t, func() bool {
		counts, status = h.goalCounts(t, "release-2")
		return status == "failed"
	}, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, map[string]any{"dead_letter": 1.0, "cancelled": 1.0}, counts)

	code, out, err := h.post("/api/tasks", `{"description":"x","depends_on":["task-0000000000000000"]}`)
	require.NoError(t, err)
	require.Equal(t, 422, code)
	require.Equal(t, "depends_on[0]", out["errors"].([]any)[0].(map[string]any)["field"])
	code, out, err = h.post("/api/tasks/batch", `{"tasks":[{"ref":"x","description":"x","depends_on":["y"]},`+
		`{"ref":"y","description":"y","depends_on":["x"]}]}`)
	require.NoError(t, err)
	require.Equal(t, 422, code)
	require.Equal(t, "cycle", out["errors"].([]any)[0].(map[string]any)["error"])
}

// TestWorkflowCommands drives dependencies, idempotency keys, goals and
// schedules through the CLI as an operator types them.
func TestWorkflowCommands(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, h, args...)
		require.Equal(t, 0, code, errOut)
		return strings.TrimSpace(out)
	}
	build := run("task", "submit", "build", "--goal", "g1", "--capability", "nobody")
	deploy := run("task", "submit", "deploy", "--depends-on", build, "--goal", "g1")
	require.Equal(t, "waiting", h.task(t, deploy).Status)
	once := run("task", "submit", "once", "--idempotency-key", "k-1")
	require.Equal(t, once, run("task", "submit", "once again", "--idempotency-key", "k-1"))

	show := run("goal", "show", "g1")
	require.Contains(t, show, "g1  g1  (open)")
	require.Contains(t, show, "tasks: 1 waiting, 1 queued")
	require.Regexp(t, deploy+`\s+waiting\s+after `+build+`\s+deploy`, show)
	require.Contains(t, run("goal", "list"), "g1")
	out, errOut, code := cli(t, h, "task", "submit", "x", "--depends-on", "task-0000000000000000")
	require.Equal(t, 2, code, out)
	require.Contains(t, errOut, "depends_on[0]")

	require.Contains(t, run("schedule", "add", "nightly", "back up the repo", "--cron", "0 3 * * *"), "nightly: next tick")
	require.Contains(t, run("schedule", "list"), "nightly")
	_, errOut, code = cli(t, h, "schedule", "add", "bad", "x", "--cron", "soon")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "cron")
	run("schedule", "delete", "nightly")
	require.NotContains(t, run("schedule", "list"), "nightly")

	require.Contains(t, run("goal", "cancel", "g1"), "g1 cancelled (2 cancelled)")
	require.Equal(t, "cancelled", h.task(t, build).Status)
	_, errOut, code = cli(t, h, "task", "submit", "late", "--goal", "g1")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "goal_cancelled")
}
