package hub

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol/ops"
)

// roleFixture is a hub listening beyond loopback with a viewer token and
// two agents, a1 holding one task and a2 another.
type roleFixture struct {
	h            *testHub
	viewer       string
	a1, a2       *testAgent
	task1, task2 string
	queued       string
	tokens       map[string]string // by caller: "", viewer, agent, admin
	natsByCaller map[string]*client.Client
}

func startRoleFixture(t *testing.T) *roleFixture {
	h := startHubCfg(t, "", logsink.LevelInfo, func(c *config.Hub) {
		c.HTTP.Listen, c.NATS.Listen = "0.0.0.0:0", "0.0.0.0:0"
	})
	viewer, _, err := h.tokens.Create(context.Background(), "dash", broker.RoleViewer)
	require.NoError(t, err)
	f := &roleFixture{h: h, viewer: viewer,
		a1: newTestAgent(t, h, "a1", nil, ignore), a2: newTestAgent(t, h, "a2", nil, ignore)}
	f.task1 = h.submit(t, `{"description":"for a1"}`)
	waitAssigned(t, h, f.task1)
	f.task2 = h.submit(t, `{"description":"for a2"}`)
	waitAssigned(t, h, f.task2)
	f.queued = h.submit(t, `{"description":"nobody's yet"}`)
	f.tokens = map[string]string{"": "", "viewer": viewer, "agent": f.a1.token, "admin": h.token}
	f.natsByCaller = map[string]*client.Client{}
	for caller, token := range f.tokens {
		if token == "" {
			continue
		}
		c, err := client.Dial(config.Client{Hub: h.NATSURL(), Token: token})
		require.NoError(t, err)
		t.Cleanup(c.Close)
		f.natsByCaller[caller] = c
	}
	return f
}

// waitAssigned waits until a task is held by some agent.
func waitAssigned(t *testing.T, h *testHub, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		task, _, ok := h.Tasks().Get(id)
		return ok && task.AssignedTo != ""
	}, 10*time.Second, 5*time.Millisecond, "task %s never assigned", id)
}

// path fills an op's path parameters with what concerns agent a1.
func (f *roleFixture) path(op ops.Op) string {
	task1, _, _ := f.h.Tasks().Get(f.task1)
	mine := f.task1
	if task1.AssignedTo != "a1" { // the scheduler chose: a1 holds whichever it holds
		mine = f.task2
	}
	return strings.NewReplacer("{id}", mine, "{agent_id}", "a1", "{key}", "agents.reconnect_grace").Replace(op.Path)
}

// expected is what a caller may do with op: allowed, or the refusal's
// status and the role it names.
func expected(op ops.Op, caller string) (int, string) {
	switch {
	case op.Access == ops.Public || caller == "admin":
		return 0, ""
	case caller == "" && op.Access == ops.Read:
		return http.StatusUnauthorized, "viewer"
	case caller == "":
		return http.StatusUnauthorized, "admin"
	case op.Access == ops.Admin:
		return http.StatusForbidden, "admin"
	case caller == "viewer" || op.Agents:
		return 0, ""
	}
	return http.StatusForbidden, "viewer"
}

// Every route, every role, both transports, with the hub beyond
// loopback: each caller gets exactly what its role allows, and every
// refusal names the role needed. (What an admin's call does is each
// operation's own tests; here an admin is only never refused.)
func TestRolesOnEveryRouteBeyondLoopback(t *testing.T) {
	t.Parallel()
	f := startRoleFixture(t)
	for _, op := range ops.All {
		for _, caller := range []string{"", "viewer", "agent", "admin"} {
			status, needs := expected(op, caller)
			if caller == "admin" && op.Access == ops.Admin {
				continue // not run: restore would restart the hub, revoke would revoke
			}
			code, out := f.h.do(t, op.Method, f.path(op), f.tokens[caller], `{}`)
			if status == 0 {
				require.NotContains(t, []int{401, 403}, code, "%s over HTTP as %q: %v", op.Name, caller, out)
			} else {
				require.Equal(t, status, code, "%s over HTTP as %q: %v", op.Name, caller, out)
				require.Equal(t, needs, out["needs"], "%s over HTTP as %q", op.Name, caller)
			}
			if caller == "" {
				continue // over NATS a connection needs a token (TestNATSNeedsAToken)
			}
			err := f.natsByCaller[caller].Do(context.Background(), op, map[string]string{"id": f.path(op)[strings.LastIndex(f.path(op), "/")+1:], "agent_id": "a1"}, nil)
			var ce *client.CallError
			if status == 0 {
				if errors.As(err, &ce) {
					require.NotContains(t, []int{401, 403}, ce.Status, "%s over NATS as %q: %v", op.Name, caller, err)
				}
				continue
			}
			require.ErrorAs(t, err, &ce, "%s over NATS as %q", op.Name, caller)
			require.Equal(t, status, ce.Status, "%s over NATS as %q: %v", op.Name, caller, err)
			require.Equal(t, needs, ce.Body.Needs, "%s over NATS as %q", op.Name, caller)
		}
	}
	refusalLogged := func() bool {
		for _, line := range f.h.logs.Lines() {
			if strings.Contains(line, `"message":"requests refused"`) {
				return true
			}
		}
		return false
	}
	require.True(t, refusalLogged(), "refusals are logged (the first of a quiet minute at once)")
}

// An agent's token reads what concerns the agent only: itself, the tasks
// it holds or held; the rest is refused with the role needed.
func TestAgentTokenReadsWhatConcernsIt(t *testing.T) {
	t.Parallel()
	f := startRoleFixture(t)
	task1, _, _ := f.h.Tasks().Get(f.task1)
	mine, theirs := f.task1, f.task2
	if task1.AssignedTo != "a1" {
		mine, theirs = f.task2, f.task1
	}
	for _, get := range []func(path string) (int, map[string]any){
		func(path string) (int, map[string]any) { return f.h.do(t, http.MethodGet, path, f.a1.token, "") },
		func(path string) (int, map[string]any) { return natsGet(t, f.natsByCaller["agent"], path) },
	} {
		code, out := get("/api/tasks")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, []string{mine}, ids(out), "the list holds a1's task alone")
		code, out = get("/api/tasks/" + mine)
		require.Equal(t, http.StatusOK, code, out)
		code, out = get("/api/tasks/" + theirs)
		require.Equal(t, http.StatusForbidden, code)
		require.Equal(t, "viewer", out["needs"])
		code, _ = get("/api/tasks/" + f.queued)
		require.Equal(t, http.StatusForbidden, code, "a queued task concerns no agent yet")
		code, out = get("/api/agents")
		require.Equal(t, http.StatusOK, code)
		require.Len(t, out["agents"], 1)
		require.Equal(t, "a1", out["agents"].([]any)[0].(map[string]any)["agent_id"])
		require.Len(t, out["last_seen"], 1, "when the hub last heard from it, and of no other")
		require.Contains(t, out["last_seen"], "a1")
		code, _ = get("/api/agents/a2/state")
		require.Equal(t, http.StatusForbidden, code)
	}
	// A viewer reads everything.
	code, out := f.h.do(t, http.MethodGet, "/api/tasks", f.viewer, "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, ids(out), 3)
	code, out = f.h.do(t, http.MethodGet, "/api/agents", f.viewer, "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, out["last_seen"], 2)
}

// natsGet reads an HTTP read path's op over NATS, as the HTTP status and
// body would be.
func natsGet(t *testing.T, c *client.Client, path string) (int, map[string]any) {
	t.Helper()
	var op ops.Op
	req := map[string]string{}
	switch {
	case path == "/api/tasks":
		op = ops.OpTaskList
	case path == "/api/agents":
		op = ops.OpAgentList
	case strings.HasPrefix(path, "/api/tasks/"):
		op, req["id"] = ops.OpTaskGet, strings.TrimPrefix(path, "/api/tasks/")
	case strings.HasPrefix(path, "/api/agents/"):
		op, req["agent_id"] = ops.OpAgentGet, strings.TrimSuffix(strings.TrimPrefix(path, "/api/agents/"), "/state")
	}
	var out map[string]any
	err := c.Do(context.Background(), op, req, &out)
	var ce *client.CallError
	if errors.As(err, &ce) {
		return ce.Status, map[string]any{"error": ce.Body.Error, "needs": ce.Body.Needs}
	}
	require.NoError(t, err)
	return http.StatusOK, out
}

// On loopback, reads are open without a token, unless http.open_reads is
// false; a token that is not known is refused either way.
func TestOpenReadsOnLoopback(t *testing.T) {
	t.Parallel()
	open := startHub(t, "")
	code, _ := open.do(t, http.MethodGet, "/api/tasks", "", "")
	require.Equal(t, http.StatusOK, code)
	code, out := open.do(t, http.MethodGet, "/api/tasks", "ac_not-a-token", "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, "the token was not recognised", out["detail"])
	code, _ = open.do(t, http.MethodPost, "/api/tasks", "", `{"description":"x"}`)
	require.Equal(t, http.StatusUnauthorized, code, "writes always need an admin token")

	closed := startHubCfg(t, "", logsink.LevelInfo, func(c *config.Hub) { c.HTTP.OpenReads = false })
	code, out = closed.do(t, http.MethodGet, "/api/tasks", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, "viewer", out["needs"])
	code, _ = closed.do(t, http.MethodGet, "/health", "", "")
	require.Equal(t, http.StatusOK, code, "health stays open")
}

// Over NATS every connection needs a token (beyond loopback not even the
// telemetry observer is let in), and a viewer's connection can publish
// only its own token commands.
func TestNATSNeedsAToken(t *testing.T) {
	t.Parallel()
	f := startRoleFixture(t)
	_, err := client.Dial(config.Client{Hub: f.h.NATSURL()})
	require.Error(t, err)
	nc := dialN(t, f.h.NATSURL(), f.viewer, 1)[0]
	_, err = nc.Request(broker.Command(broker.CmdTaskList), nil, 500*time.Millisecond)
	require.Error(t, err, "a viewer may not publish on the admins' command subjects")
	resp, err := nc.Request(broker.TokenCommand(broker.TokenID(f.viewer), broker.CmdTaskStats), nil, 500*time.Millisecond)
	require.Error(t, err, "nor receive answers outside its own inbox: %v", resp)
}
