package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// startClockHub runs a hub on a fake clock, with leases too long for the
// clock's jumps to reclaim anything, and a backoff of 1s doubling to 1m.
func startClockHub(t *testing.T) (*testHub, *fakeClock) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	h := startHubClock(t, "", logsink.LevelInfo, clock.Now, func(cfg *config.Hub) {
		cfg.Tasks = config.Tasks{RetryBase: time.Second, RetryMax: time.Minute}
		cfg.Agents.ReapAfter, cfg.Agents.StuckThreshold = 1000*time.Hour, 1000*time.Hour
		cfg.Agents.AcceptanceTimeout = 1000 * time.Hour
	})
	return h, clock
}

// failAtOnce accepts and fails every assignment.
func failAtOnce(a *testAgent, as protocol.Assignment) {
	if a.call(broker.VerbAccept, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation}) == 200 {
		a.call(broker.VerbFail, protocol.Fail{TaskID: as.TaskID, Generation: as.Generation, Error: "boom"})
	}
}

// requireHeldBack checks, once agentID is idle, that a scheduler pass
// hands out nothing and knows when the task comes due.
func requireHeldBack(t *testing.T, h *testHub, agentID string, due time.Time) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, a := range h.views.Agents.Available() {
			if a.ID == agentID {
				return true
			}
		}
		return false
	}, 15*time.Second, 5*time.Millisecond, "agent %s never became idle", agentID)
	matches, next := h.coord.Schedule("test")
	require.Empty(t, matches, "a waiting task was handed out early")
	require.Equal(t, due, next)
}

func TestFailedTaskWaitsOutItsBackoff(t *testing.T) {
	t.Parallel()
	h, clock := startClockHub(t)
	agent := newTestAgent(t, h, "a1", nil, failAtOnce)
	id := h.submit(t, `{"description":"flaky","max_retries":3}`)

	for attempt, base := range []time.Duration{time.Second, 2 * time.Second} {
		var task *domain.Task
		require.Eventually(t, func() bool {
			task, _, _ = h.Tasks().Get(id)
			return int(task.RetryCount) == attempt+1 && task.Status == domain.StatusQueued
		}, 15*time.Second, 5*time.Millisecond, "attempt %d never failed", attempt+1)
		require.NotNil(t, task.RunAfter, "a retried task waits")
		delay := task.RunAfter.Sub(clock.Now())
		require.LessOrEqual(t, delay, base, "attempt %d", attempt+1)
		require.GreaterOrEqual(t, delay, base-time.Duration(float64(base)*domain.RetryJitter), "attempt %d", attempt+1)

		code, body := h.do(t, http.MethodGet, "/api/tasks/"+id, h.token, "")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, task.RunAfter.Format(time.RFC3339Nano), body["run_after"], "the API shows the wait")

		requireHeldBack(t, h, agent.id, *task.RunAfter)
		clock.Advance(delay)
		h.coord.Wake()
		require.Eventually(t, func() bool { return len(agent.assignments()) == attempt+2 }, 15*time.Second, 5*time.Millisecond)
	}
	task := waitStatus(t, h, id, domain.StatusDeadLetter)
	require.Equal(t, int32(3), task.RetryCount)
	require.Nil(t, task.RunAfter)
}

func TestRunAtTaskIsNotAssignedEarly(t *testing.T) {
	t.Parallel()
	h, clock := startClockHub(t)
	agent := newTestAgent(t, h, "a1", nil, completeAtOnce)
	runAt := clock.Now().Add(time.Hour)
	id := h.submit(t, `{"description":"later","run_at":"`+runAt.Format(time.RFC3339)+`"}`)
	task, _, _ := h.Tasks().Get(id)
	require.Equal(t, runAt, *task.RunAfter)

	requireHeldBack(t, h, agent.id, runAt)
	clock.Advance(time.Hour - time.Millisecond)
	requireHeldBack(t, h, agent.id, runAt)
	clock.Advance(time.Millisecond)
	h.coord.Wake()
	waitStatus(t, h, id, domain.StatusCompleted)
	require.Len(t, agent.assignments(), 1)
}

func TestAgentFreeTextIsScrubbedBeforeItIsStored(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	secret := "ac_" + strings.Repeat("x1", 16)
	leaky := func(a *testAgent, as protocol.Assignment) {
		ref := protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation}
		a.call(broker.VerbAccept, ref)
		a.call(broker.VerbProgress, map[string]any{"task_id": as.TaskID, "generation": as.Generation, "message": "using " + secret})
		a.call(broker.VerbFail, protocol.Fail{TaskID: as.TaskID, Generation: as.Generation, Error: "401 with token " + secret})
	}
	agent := newTestAgent(t, h, "a1", nil, leaky)
	id := h.submit(t, `{"description":"leak","max_retries":1}`)
	h.coord.Pause(false)
	h.coord.Wake()
	task := waitStatus(t, h, id, domain.StatusDeadLetter)
	require.Len(t, agent.assignments(), 1)
	require.NotContains(t, task.LastError, secret)
	require.Contains(t, task.LastError, "401 with token")
	var events strings.Builder
	require.NoError(t, h.Store().Read(context.Background(), broker.ReadOpts{}, func(env domain.Envelope) error {
		b, err := domain.EncodeEnvelope(env)
		events.Write(b)
		return err
	}))
	require.Contains(t, events.String(), "401 with token")
	require.NotContains(t, events.String(), secret, "a stored event keeps a secret")
}

// TestSchedulerAttemptOnlyWhenSomethingChanged: a task nobody can run
// beside an idle agent gives one scheduler.attempt, not one a tick.
func TestSchedulerAttemptOnlyWhenSomethingChanged(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(*config.Hub) {})
	attempts, err := h.nc.SubscribeSync(broker.TelemetryPrefix + "scheduler.attempt")
	require.NoError(t, err)
	newTestAgent(t, h, "a1", []string{"go"}, completeAtOnce)
	h.submit(t, `{"description":"needs a gpu","needed_capabilities":["gpu"]}`)
	type attempt struct {
		Measurements map[string]float64 `json:"measurements"`
	}
	next := func() map[string]float64 {
		t.Helper()
		msg, err := attempts.NextMsg(15 * time.Second)
		require.NoError(t, err, "no scheduler.attempt came")
		var ev attempt
		require.NoError(t, json.Unmarshal(msg.Data, &ev))
		return ev.Measurements
	}
	for m := next(); m["queued_tasks"] != 1 || m["idle_agents"] != 1; m = next() {
	} // until the pass that sees the task and the idle agent
	for range 5 {
		matches, _ := h.coord.Schedule("tick") // nothing changed: silent
		require.Empty(t, matches)
	}
	h.submit(t, `{"description":"needs a tpu","needed_capabilities":["tpu"]}`)
	require.Equal(t, float64(2), next()["queued_tasks"], "the passes between were silent: the next attempt is the new task's")
}
