package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/agents"
	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// fastLeases makes the lease timings short. The reaper waits a minute:
// test agents do not heartbeat, and a loaded machine must not evict them
// halfway through a test.
func fastLeases(cfg *config.Hub) {
	cfg.Agents = config.Agents{AcceptanceTimeout: 400 * time.Millisecond, StuckThreshold: time.Second,
		HeartbeatInterval: 100 * time.Millisecond, ReapAfter: time.Minute, ReconnectGrace: 300 * time.Millisecond,
		SweepInterval: 50 * time.Millisecond}
}

func waitStatus(t *testing.T, h *testHub, id string, want domain.Status) *domain.Task {
	t.Helper()
	var task *domain.Task
	require.Eventually(t, func() bool {
		task, _, _ = h.Tasks().Get(id)
		return task != nil && task.Status == want
	}, 15*time.Second, 10*time.Millisecond, "task %s never became %s", id, want)
	return task
}

func TestAgentsCompleteTasksTheyCanRun(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(*config.Hub) {})
	fleet := []*testAgent{
		newTestAgent(t, h, "go-1", []string{"go"}, completeAtOnce),
		newTestAgent(t, h, "py-1", []string{"python"}, completeAtOnce),
		newTestAgent(t, h, "both-1", []string{"go", "python"}, completeAtOnce),
	}
	needs := [][]string{nil, {"go"}, {"python"}, {"go", "python"}}
	var ids []string
	for i := range 40 {
		body, _ := json.Marshal(map[string]any{"description": fmt.Sprint("t", i),
			"priority": domain.Priorities[i%4].String(), "needed_capabilities": needs[i%4]})
		ids = append(ids, h.submit(t, string(body)))
	}
	for _, id := range ids {
		task := waitStatus(t, h, id, domain.StatusCompleted)
		a, _, _ := h.Agents().Get(task.AssignedTo)
		require.True(t, a.CanRun(task), "%s ran %s without %v", a.ID, id, task.NeededCapabilities)
	}
	seen := map[string]int{}
	for _, a := range fleet {
		for _, as := range a.assignments() {
			seen[as.TaskID]++
		}
		require.NotEmpty(t, a.assignments(), "%s got no work", a.id)
	}
	for _, id := range ids {
		require.Equal(t, 1, seen[id], "task %s assigned %d times", id, seen[id])
	}
	for _, a := range h.Agents().List() {
		require.Equal(t, domain.StateIdle, a.State)
	}
}

func TestAcceptanceTimeoutFlagsAndReassigns(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, fastLeases)
	lazy := newTestAgent(t, h, "lazy", nil, ignore)
	id := h.submit(t, `{"description":"x"}`)
	require.Eventually(t, func() bool { return len(lazy.assignments()) == 1 }, 15*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		a, _, _ := h.Agents().Get("lazy")
		return a.Unresponsive
	}, 15*time.Second, 10*time.Millisecond, "the agent that never accepted is flagged")
	task := waitStatus(t, h, id, domain.StatusQueued)
	require.Equal(t, int32(1), task.ReclaimCount)
	newTestAgent(t, h, "busy-bee", nil, completeAtOnce)
	waitStatus(t, h, id, domain.StatusCompleted)
	require.Len(t, lazy.assignments(), 1, "a flagged agent gets no more work")
	// A heartbeat proves it alive again.
	require.Equal(t, 200, lazy.call(broker.VerbHeartbeat, protocol.Heartbeat{Session: lazy.session}))
	require.Eventually(t, func() bool {
		a, _, _ := h.Agents().Get("lazy")
		return !a.Unresponsive
	}, 5*time.Second, 10*time.Millisecond)
}

// TestProgressKeepsALongTaskAlive: the hub's clock moves 3 s, three
// times the stuck threshold, in steps of 300 ms, each followed by a
// progress report: the task is never reclaimed.
func TestProgressKeepsALongTaskAlive(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	h := startHubClock(t, "", logsink.LevelInfo, clock.Now, fastLeases)
	done := make(chan struct{})
	slow := func(a *testAgent, as protocol.Assignment) {
		defer close(done)
		a.call(broker.VerbAccept, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation})
		for range 10 {
			clock.Advance(300 * time.Millisecond)
			a.call(broker.VerbProgress, protocol.Progress{TaskID: as.TaskID, Generation: as.Generation, Message: "still going"})
			h.coord.Sweep() // a sweep at every step: without the progress, the fourth would reclaim
		}
		a.call(broker.VerbComplete, protocol.Complete{TaskID: as.TaskID, Generation: as.Generation})
	}
	newTestAgent(t, h, "slow", nil, slow)
	id := h.submit(t, `{"description":"long"}`)
	<-done
	task := waitStatus(t, h, id, domain.StatusCompleted)
	require.Zero(t, task.ReclaimCount)
	require.Equal(t, uint64(1), task.Generation)
	require.Greater(t, task.UpdatedAt.Sub(task.CreatedAt), 2*time.Second, "the task outlived the stuck threshold")
}

func TestStuckTaskIsReclaimedAndItsAgentTold(t *testing.T) {
	t.Parallel()
	// Only the stuck threshold is short: on a loaded machine a late accept
	// must not take the task back first.
	h := startHubCfg(t, "", logsink.LevelInfo, func(cfg *config.Hub) {
		fastLeases(cfg)
		cfg.Agents.AcceptanceTimeout = time.Minute
	})
	mute := newTestAgent(t, h, "mute", nil, func(a *testAgent, as protocol.Assignment) {
		a.call(broker.VerbAccept, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation})
	})
	id := h.submit(t, `{"description":"x"}`)
	require.Eventually(t, func() bool {
		task, _, _ := h.Tasks().Get(id)
		return task.ReclaimCount >= 1
	}, 15*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		mute.mu.Lock()
		defer mute.mu.Unlock()
		return len(mute.aborts) >= 1 && mute.aborts[0].Reason == agents.ReasonStuck
	}, 15*time.Second, 10*time.Millisecond)
	// Its late report names a stale generation and changes nothing.
	first := mute.assignments()[0]
	status, body := mute.request(broker.VerbComplete, protocol.Complete{TaskID: id, Generation: first.Generation})
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, string(body), "stale_generation")
}

func TestDisconnectedAgentsTaskGoesToAnother(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, fastLeases)
	accepted := make(chan struct{})
	dying := newTestAgent(t, h, "dying", nil, func(a *testAgent, as protocol.Assignment) {
		a.call(broker.VerbAccept, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation})
		close(accepted)
	})
	id := h.submit(t, `{"description":"x"}`)
	<-accepted
	dying.nc.Close()
	require.Eventually(t, func() bool {
		a, _, _ := h.Agents().Get("dying")
		return a.State == domain.StateOffline
	}, 5*time.Second, 5*time.Millisecond, "the server's disconnect advisory takes the agent offline at once")
	newTestAgent(t, h, "heir", nil, completeAtOnce)
	task := waitStatus(t, h, id, domain.StatusCompleted)
	require.Equal(t, "heir", task.AssignedTo)
}

func TestHelloContinuesOrAbortsAHeldTask(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(*config.Hub) {})
	got := make(chan protocol.Assignment, 1)
	a := newTestAgent(t, h, "resumer", nil, func(a *testAgent, as protocol.Assignment) {
		a.call(broker.VerbAccept, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation})
		got <- as
	})
	id := h.submit(t, `{"description":"x"}`)
	as := <-got
	waitStatus(t, h, id, domain.StatusWorking)

	var reply protocol.HelloReply
	status, body := a.request(broker.VerbHello, protocol.Hello{Session: "s-2",
		Holding: &protocol.Holding{TaskID: id, Generation: as.Generation, Status: "working"}})
	require.Equal(t, 200, status)
	require.NoError(t, json.Unmarshal(body, &reply))
	require.Equal(t, protocol.ActionContinue, reply.Action)
	ag, _, _ := h.Agents().Get("resumer")
	require.Equal(t, domain.StateWorking, ag.State)
	require.Equal(t, id, ag.CurrentTask)

	status, body = a.request(broker.VerbHello, protocol.Hello{Session: "s-3",
		Holding: &protocol.Holding{TaskID: id, Generation: as.Generation + 7, Status: "working"}})
	require.Equal(t, 200, status)
	require.NoError(t, json.Unmarshal(body, &reply))
	require.Equal(t, protocol.ActionAbort, reply.Action)
	// It no longer holds the task the hub gave it: that task is taken back
	// (and, the agent being the only one, given to it again).
	require.Eventually(t, func() bool {
		task, _, _ := h.Tasks().Get(id)
		return task.ReclaimCount == 1 && task.Generation == as.Generation+2
	}, 5*time.Second, 10*time.Millisecond)
}

func TestTokenRoutesAreAdminOnly(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(*config.Hub) {})
	code, out := h.do(t, http.MethodPost, "/admin/tokens", h.token, `{"agent_id":"a-1"}`)
	require.Equal(t, http.StatusCreated, code)
	agentToken := out["token"].(string)
	code, _ = h.do(t, http.MethodGet, "/admin/tokens", agentToken, "")
	require.Equal(t, http.StatusForbidden, code, "an agent's token is not an admin token")
	code, _ = h.do(t, http.MethodGet, "/admin/tokens", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, out = h.do(t, http.MethodGet, "/admin/tokens", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, fmt.Sprint(out), agentToken)
	code, out = h.do(t, http.MethodPost, "/admin/tokens", h.token, `{"agent_id":"a.b"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Equal(t, "agent_id", fieldOf(out))
	code, _ = h.do(t, http.MethodDelete, "/admin/tokens/a-1", h.token, "")
	require.Equal(t, http.StatusOK, code)
	code, _ = h.do(t, http.MethodDelete, "/admin/tokens/a-1", h.token, "")
	require.Equal(t, http.StatusNotFound, code)
	_, ok := h.auth.Lookup(agentToken)
	require.False(t, ok)
}

func TestBlockedAndUnblockedFollowTheStateMachine(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(*config.Hub) {})
	got := make(chan protocol.Assignment, 1)
	a := newTestAgent(t, h, "blocker", nil, func(a *testAgent, as protocol.Assignment) {
		a.call(broker.VerbAccept, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation})
		got <- as
	})
	// Not working yet: blocking is an invalid transition, refused.
	status, body := a.request(broker.VerbBlocked, protocol.TaskRef{TaskID: "task-none"})
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, string(body), "invalid_state")

	id := h.submit(t, `{"description":"x"}`)
	as := <-got
	waitStatus(t, h, id, domain.StatusWorking)
	require.Equal(t, 200, a.call(broker.VerbBlocked, protocol.TaskRef{TaskID: id, Reason: "waiting for review"}))
	ag, _, _ := h.Agents().Get("blocker")
	require.Equal(t, domain.StateBlocked, ag.State)
	require.Equal(t, 200, a.call(broker.VerbUnblocked, protocol.TaskRef{TaskID: id}))
	require.Equal(t, 200, a.call(broker.VerbComplete, protocol.Complete{TaskID: id, Generation: as.Generation}))
	ag, _, _ = h.Agents().Get("blocker")
	require.Equal(t, domain.StateIdle, ag.State)
	require.Zero(t, ag.Invalid)

	code, out := h.do(t, http.MethodGet, "/api/agents/blocker/state", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "idle", out["fsm_state"])
	code, out = h.do(t, http.MethodGet, "/api/agents/nobody/state", "", "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "agent_not_found", out["error"])
	code, out = h.do(t, http.MethodGet, "/api/agents", "", "")
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 1, out["count"])
}

func TestASecondConnectionReplacesTheFirst(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(*config.Hub) {})
	old := newTestAgent(t, h, "twin", []string{"go"}, ignore)
	// The same agent connects again with the same token and a new session.
	fresh := &testAgent{id: "twin", session: "s-new", nc: reconnectAs(t, h, old), work: ignore}
	require.Equal(t, 200, fresh.call(broker.VerbHello, protocol.Hello{Capabilities: []string{"go", "docs"}, Session: "s-new"}))
	require.Eventually(t, func() bool { return !old.nc.IsConnected() }, 5*time.Second, 10*time.Millisecond,
		"the older connection is closed")
	ag, _, _ := h.Agents().Get("twin")
	require.Equal(t, "s-new", ag.Session)
	require.Equal(t, []string{"docs", "go"}, ag.Capabilities)
	require.Equal(t, domain.StateIdle, ag.State, "the old connection's end does not take the new one offline")
	require.Equal(t, http.StatusConflict, fresh.call(broker.VerbHeartbeat, protocol.Heartbeat{Session: "s-old"}))
	// The replaced sidecar, reconnecting, is told to stop rather than take
	// the agent back.
	status, body := fresh.request(broker.VerbHello, protocol.Hello{Session: old.session})
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, string(body), protocol.CodeSessionReplaced)
}

func TestOverdueTaskIsDeadLetteredNotBounced(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(c *config.Hub) {
		fastLeases(c)
		c.Agents.StuckThreshold = time.Minute
	})
	mute := newTestAgent(t, h, "holder", nil, func(a *testAgent, as protocol.Assignment) {
		a.call(broker.VerbAccept, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation})
	})
	due := time.Now().Add(700 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	id := h.submit(t, `{"description":"due soon","complete_by":"`+due+`"}`)
	task := waitStatus(t, h, id, domain.StatusDeadLetter)
	require.Equal(t, "holder", task.History[len(task.History)-2].AgentID, "taken back from its agent first")
	require.Eventually(t, func() bool {
		mute.mu.Lock()
		defer mute.mu.Unlock()
		return len(mute.aborts) == 1 && mute.aborts[0].Reason == agents.ReasonOverdue
	}, 5*time.Second, 10*time.Millisecond)
	// A retry runs it without the passed deadline.
	code, _ := h.do(t, http.MethodPost, "/api/tasks/"+id+"/retry", h.token, "")
	require.Equal(t, http.StatusOK, code)
	task = waitStatus(t, h, id, domain.StatusWorking)
	require.Nil(t, task.CompleteBy)
}
