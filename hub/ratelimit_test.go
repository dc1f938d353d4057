package hub

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// postSubmit submits over HTTP and returns the status and Retry-After.
func postSubmit(t *testing.T, h *testHub, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.HTTPURL()+"/api/tasks", strings.NewReader(`{"description":"x"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// The 11th heavy request in a minute is 429 with a Retry-After that, when
// honoured, succeeds: over HTTP and NATS alike, one budget per token.
func TestEleventhHeavyRequestWaitsItsRetryAfter(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now()}
	h := startHubClock(t, "", logsink.LevelInfo, clock.Now, func(*config.Hub) {})
	ops, _, err := h.tokens.Create(context.Background(), "ops", broker.RoleAdmin)
	require.NoError(t, err)
	for i := range 10 {
		code, _ := postSubmit(t, h, ops)
		require.Equal(t, http.StatusCreated, code, "submit %d", i+1)
	}
	code, wait := postSubmit(t, h, ops)
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Equal(t, "6", wait, "10 a minute: one every 6 s")

	// Over NATS, the same budget, the same answer and header.
	nc, err := nats.Connect(h.NATSURL(), nats.Token(ops), nats.CustomInboxPrefix(broker.TokenInbox(broker.TokenID(ops))))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	resp, err := nc.Request(broker.TokenCommand(broker.TokenID(ops), broker.CmdTaskSubmit), []byte(`{"description":"x"}`), 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "429", resp.Header.Get(protocol.HeaderStatus))
	require.Equal(t, "6", resp.Header.Get("Retry-After"))
	require.Contains(t, string(resp.Data), `"retry_after_s":6`)

	clock.Advance(6 * time.Second)
	code, _ = postSubmit(t, h, ops)
	require.Equal(t, http.StatusCreated, code, "the wait honoured")
	code, _ = postSubmit(t, h, ops)
	require.Equal(t, http.StatusTooManyRequests, code, "and only one more")

	for range 20 {
		code, _ := postSubmit(t, h, h.token)
		require.Equal(t, http.StatusCreated, code, "the admin.token file's token is never limited")
	}
}

// An admin's overrides and exempt names apply at once and survive a
// restart; each route answers its errors.
func TestRateLimitOverridesAndExemptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHub(t, dir)
	ops, _, err := h.tokens.Create(context.Background(), "ops", broker.RoleAdmin)
	require.NoError(t, err)
	viewer, _, err := h.tokens.Create(context.Background(), "dash", broker.RoleViewer)
	require.NoError(t, err)

	code, out := h.do(t, http.MethodPut, "/api/admin/rate-limits/ops", h.token, `{"heavy":12}`)
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, 12, out["overrides"].(map[string]any)["ops"].(map[string]any)["heavy"])
	for i := range 12 {
		code, _ := postSubmit(t, h, ops)
		require.Equal(t, http.StatusCreated, code, "submit %d under the override", i+1)
	}
	code, _ = postSubmit(t, h, ops)
	require.Equal(t, http.StatusTooManyRequests, code)
	code, _ = h.do(t, http.MethodPut, "/api/admin/rate-limits/exempt/ops", h.token, "")
	require.Equal(t, http.StatusOK, code)
	code, _ = postSubmit(t, h, ops)
	require.Equal(t, http.StatusCreated, code, "exempt")

	code, out = h.do(t, http.MethodPut, "/api/admin/rate-limits/ops", h.token, `{"heavy":0}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, out)
	code, _ = h.do(t, http.MethodPut, "/api/admin/rate-limits/bad.name", h.token, `{"heavy":1}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	code, out = h.do(t, http.MethodPut, "/api/admin/rate-limits/ops", viewer, `{"heavy":100}`)
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "admin", out["needs"])
	code, _ = h.do(t, http.MethodGet, "/api/admin/rate-limits", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = h.do(t, http.MethodDelete, "/api/admin/rate-limits/nobody", h.token, "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = h.do(t, http.MethodDelete, "/api/admin/rate-limits/exempt/nobody", h.token, "")
	require.Equal(t, http.StatusNotFound, code)

	h.Stop()
	h = startHub(t, dir)
	code, out = h.do(t, http.MethodGet, "/api/admin/rate-limits", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{"ops"}, out["exempt"], "kept across a restart")
	require.Contains(t, out["overrides"], "ops")
	code, _ = h.do(t, http.MethodDelete, "/api/admin/rate-limits/ops", h.token, "")
	require.Equal(t, http.StatusOK, code)
	code, _ = h.do(t, http.MethodDelete, "/api/admin/rate-limits/exempt/ops", h.token, "")
	require.Equal(t, http.StatusOK, code)
}

// A usage that does not check is refused (422) and the completion not
// stored; a sound one is summed, and an agent's token reads its own rows.
func TestCompletionUsageIsCheckedAndSummed(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(*config.Hub) {})
	got := make(chan protocol.Assignment, 1)
	a := newTestAgent(t, h, "a1", nil, func(_ *testAgent, as protocol.Assignment) { got <- as })
	h.submit(t, `{"description":"costly"}`)
	var as protocol.Assignment
	select {
	case as = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the task was never assigned")
	}
	require.Equal(t, 200, a.call(broker.VerbAccept, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation}))
	bad := protocol.Complete{TaskID: as.TaskID, Generation: as.Generation, Usage: &protocol.Usage{InputTokens: -1, CostUSD: -2}}
	status, body := a.request(broker.VerbComplete, bad)
	require.Equal(t, http.StatusUnprocessableEntity, status, body)
	task, _, _ := h.Tasks().Get(as.TaskID)
	require.Equal(t, "working", string(task.Status), "not stored")
	good := protocol.Complete{TaskID: as.TaskID, Generation: as.Generation, Usage: &protocol.Usage{InputTokens: 7, CostUSD: 0.5}}
	require.Equal(t, 200, a.call(broker.VerbComplete, good))
	code, out := h.do(t, http.MethodGet, "/api/usage", a.token, "")
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, 0.5, out["total"].(map[string]any)["cost_usd"])
	code, _ = h.do(t, http.MethodGet, "/api/usage?since=yesterday", h.token, "")
	require.Equal(t, http.StatusUnprocessableEntity, code)
}

// An agent reset takes back what the agent holds (a counted reclaim,
// reason reset) and answers which tasks; an unknown agent is 404.
func TestAgentResetTakesItsTasksBack(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(*config.Hub) {})
	newTestAgent(t, h, "a1", nil, ignore)
	id := h.submit(t, `{"description":"held"}`)
	waitAssigned(t, h, id)
	code, out := h.do(t, http.MethodPost, "/api/admin/reset/a1", h.token, "")
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, []any{id}, out["reclaimed"])
	require.Eventually(t, func() bool {
		task, _, _ := h.Tasks().Get(id)
		return task.ReclaimCount == 1
	}, 10*time.Second, 5*time.Millisecond)
	task, _, _ := h.Tasks().Get(id)
	var reasons []string
	for _, e := range task.History {
		reasons = append(reasons, e.Detail)
	}
	require.Contains(t, reasons, "reset")
	code, _ = h.do(t, http.MethodPost, "/api/admin/reset/nobody", h.token, "")
	require.Equal(t, http.StatusNotFound, code)
}

// A pushed task is for its agent alone: another agent, even one that
// claims the pin capability, never gets it; it waits for its agent.
func TestPushTaskGoesToItsAgentAlone(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(*config.Hub) {})
	newTestAgent(t, h, "a1", []string{"agent:a2"}, ignore) // claims a2's pin: it must not count
	code, out := h.do(t, http.MethodPost, "/api/admin/push-task", h.token, `{"agent_id":"nobody","description":"x"}`)
	require.Equal(t, http.StatusNotFound, code, out)
	target := newTestAgent(t, h, "a2", nil, ignore)
	require.Equal(t, 200, target.call(broker.VerbBye, map[string]string{"session": target.session}), "a2 known, offline")
	code, out = h.do(t, http.MethodPost, "/api/admin/push-task", h.token, `{"agent_id":"a2"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, out)
	code, out = h.do(t, http.MethodPost, "/api/admin/push-task", h.token, `{"agent_id":"a2","description":"for a2"}`)
	require.Equal(t, http.StatusCreated, code, out)
	id := out["task_id"].(string)
	deadline := time.Now().Add(2 * time.Second) // two scheduler safety passes
	for time.Now().Before(deadline) {
		task, _, _ := h.Tasks().Get(id)
		require.Equal(t, "queued", string(task.Status), "a1 took a2's task")
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, 200, target.hello(nil))
	waitAssigned(t, h, id)
	task, _, _ := h.Tasks().Get(id)
	require.Equal(t, "a2", task.AssignedTo)
}
