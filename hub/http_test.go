package hub

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
)

func TestHTTPHealthIsOpen(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	code, out := h.do(t, http.MethodGet, "/health", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", out["status"])
}

func TestHTTPSubmitAndRead(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	id := h.submit(t, `{"description":"build it","priority":"high","metadata":{"repo":"x"},"needed_capabilities":["go"],"max_retries":2}`)
	code, task := h.do(t, http.MethodGet, "/api/tasks/"+id, "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "build it", task["description"])
	require.Equal(t, "high", task["priority"])
	require.Equal(t, "queued", task["status"])
	require.Equal(t, "admin", task["submitted_by"])
	require.Equal(t, map[string]any{"repo": "x"}, task["metadata"])
	require.Equal(t, []any{"go"}, task["needed_capabilities"])
	require.EqualValues(t, 2, task["max_retries"])

	code, out := h.do(t, http.MethodGet, "/api/tasks/task-doesnotexist", "", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "task_not_found", out["error"])
	code, _ = h.do(t, http.MethodGet, "/api/nothing", "", "")
	require.Equal(t, http.StatusNotFound, code)
}

func TestHTTPListIsQueueOrder(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	var want [domain.PriorityCount][]string
	for i, p := range []string{"low", "normal", "urgent", "high", "low", "urgent", "normal", "high"} {
		id := h.submit(t, fmt.Sprintf(`{"description":"t%d","priority":%q}`, i, p))
		prio, _ := domain.ParsePriority(p)
		want[prio] = append(want[prio], id)
	}
	var order []string
	for _, lane := range want {
		order = append(order, lane...)
	}
	code, out := h.do(t, http.MethodGet, "/api/tasks", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, order, ids(out))
	_, out = h.do(t, http.MethodGet, "/api/tasks?status=queued&priority=urgent", "", "")
	require.Equal(t, want[domain.PriorityUrgent], ids(out))
	code, out = h.do(t, http.MethodGet, "/api/tasks?status=sleeping", "", "")
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Equal(t, "status", fieldOf(out))
	_, stats := h.do(t, http.MethodGet, "/api/tasks/stats", "", "")
	require.EqualValues(t, 8, stats["total"])
	require.Equal(t, map[string]any{"urgent": 2.0, "high": 2.0, "normal": 2.0, "low": 2.0}, stats["queued_by_priority"])
}

func TestHTTPInvalidSubmitIsRefusedAndStoresNothing(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	cases := map[string]struct{ body, field string }{
		"missing description": {`{"priority":"high"}`, "description"},
		"blank description":   {`{"description":"   "}`, "description"},
		"unknown priority":    {`{"description":"x","priority":"asap"}`, "priority"},
		"too long":            {`{"description":"` + strings.Repeat("é", domain.MaxDescriptionLength+1) + `"}`, "description"},
		"malformed json":      {`{"description":`, "body"},
		"description number":  {`{"description":42}`, "description"},
		"metadata list":       {`{"description":"x","metadata":[1]}`, "metadata"},
		"retries string":      {`{"description":"x","max_retries":"3"}`, "max_retries"},
		"capabilities string": {`{"description":"x","needed_capabilities":"go"}`, "needed_capabilities"},
		"complete_by year":    {`{"description":"x","complete_by":"9999-12-31T23:00:00-05:00"}`, "complete_by"},
		"complete_by huge":    {`{"description":"x","complete_by":9223372036854775807}`, "complete_by"},
		"complete_by past":    {`{"description":"x","complete_by":1000}`, "complete_by"},
	}
	before := h.Tasks().LastSeq()
	for name, c := range cases {
		code, out := h.do(t, http.MethodPost, "/api/tasks", h.token, c.body)
		require.Equal(t, http.StatusUnprocessableEntity, code, name)
		require.Equal(t, "validation_failed", out["error"], name)
		require.Equal(t, c.field, fieldOf(out), name)
	}
	last, err := h.Store().LastSeq(context.Background())
	require.NoError(t, err)
	require.Equal(t, before, last, "no event was appended")
}

func TestHTTPWritesNeedTheAdminToken(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	id := h.submit(t, `{"description":"x"}`)
	for _, tok := range []string{"", "ac_wrong"} {
		for _, path := range []string{"/api/tasks", "/api/tasks/" + id + "/cancel", "/api/tasks/" + id + "/retry"} {
			code, out := h.do(t, http.MethodPost, path, tok, `{"description":"y"}`)
			require.Equal(t, http.StatusUnauthorized, code, path)
			require.Equal(t, "unauthorized", out["error"])
		}
	}
	require.Equal(t, 1, h.Tasks().Stats().Total, "nothing was done")
	code, _ := h.do(t, http.MethodPost, "/api/tasks/"+id+"/cancel", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	req, err := http.NewRequest(http.MethodPost, h.HTTPURL()+"/api/tasks/"+id+"/cancel", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the scheme is case-insensitive")
}

func TestHTTPCancelAndRetry(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	id := h.submit(t, `{"description":"x","max_retries":1}`)
	code, out := h.do(t, http.MethodPost, "/api/tasks/"+id+"/retry", h.token, "")
	require.Equal(t, http.StatusConflict, code, "only a dead-lettered task can be retried")
	require.Equal(t, "invalid_state", out["error"])

	deadLetter(t, h.Hub, id)
	_, out = h.do(t, http.MethodGet, "/api/tasks/dead-letter", "", "")
	require.Equal(t, []string{id}, ids(out))
	_, out = h.do(t, http.MethodGet, "/api/tasks", "", "")
	require.Empty(t, ids(out), "dead letter is not in the main list")

	code, out = h.do(t, http.MethodPost, "/api/tasks/"+id+"/retry", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "requeued", out["status"])
	_, task := h.do(t, http.MethodGet, "/api/tasks/"+id, "", "")
	require.Equal(t, "queued", task["status"])
	require.EqualValues(t, 0, task["retry_count"])

	code, out = h.do(t, http.MethodPost, "/api/tasks/"+id+"/cancel", h.token, `{"reason":"not needed"}`)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, "cancelled", out["status"])
	code, _ = h.do(t, http.MethodPost, "/api/tasks/"+id+"/cancel", h.token, "")
	require.Equal(t, http.StatusConflict, code)
	code, _ = h.do(t, http.MethodPost, "/api/tasks/task-nope/cancel", h.token, "")
	require.Equal(t, http.StatusNotFound, code)
}

// deadLetter drives a task through assignments and failures until it
// runs out of retries, as agents would.
func deadLetter(t *testing.T, h *Hub, id string) {
	t.Helper()
	ctx := context.Background()
	connectAgent(t, h, "agent-1")
	for {
		task, err := h.svc.Execute(ctx, domain.AssignTask{ID: id, AgentID: "agent-1"})
		require.NoError(t, err)
		task, err = h.svc.Execute(ctx, domain.FailTask{ID: id, AgentID: "agent-1", Generation: task.Generation, Error: "exit 1"})
		require.NoError(t, err)
		if task.Status == domain.StatusDeadLetter {
			return
		}
	}
}

func ids(out map[string]any) []string {
	var ids []string
	for _, t := range out["tasks"].([]any) {
		ids = append(ids, t.(map[string]any)["id"].(string))
	}
	return ids
}

func fieldOf(out map[string]any) string {
	errs := out["errors"].([]any)
	return errs[0].(map[string]any)["field"].(string)
}

// connectAgent says hello for an agent, as a sidecar would.
// connectAgent connects an agent without a NATS connection. It is seen
// now, so the reaper gives it the full reap period, not one sweep.
func connectAgent(t testing.TB, h *Hub, id string, caps ...string) {
	t.Helper()
	h.coord.Heard(id)
	_, err := h.svc.ExecuteAgent(context.Background(), domain.ConnectAgent{ID: id, Session: "s-" + id, Capabilities: caps})
	require.NoError(t, err)
}
