package hub

import (
	"time"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/telemetry"
)

// tap turns applied events and agent state changes into telemetry. It
// runs on the applier (and under the agent projection's lock for
// transitions), and Emit never blocks.
type tap struct {
	tel   *telemetry.Emitter
	views *projections.Views
}

type m = map[string]float64

// applied emits the catalog event of each applied domain event.
func (t tap) applied(envs []domain.Envelope) {
	for _, env := range envs {
		t.event(env)
	}
}

func (t tap) event(env domain.Envelope) {
	meta := map[string]any{"request_id": env.RequestID}
	id := env.Aggregate
	if env.IsAgent() {
		t.agentEvent(env, meta)
		return
	}
	meta["task_id"] = id
	switch e := env.Data.(type) {
	case domain.TaskSubmitted:
		meta["priority"], meta["submitted_by"] = e.Priority.String(), e.SubmittedBy
		t.tel.Emit("task.submit", m{"queue_depth": float64(t.views.Tasks.QueueDepth())}, meta)
	case domain.TaskAssigned:
		meta["agent_id"], meta["generation"] = e.AgentID, e.Generation
		t.tel.Emit("task.assign", m{"wait_ms": telemetry.Ms(env.Time.Sub(queuedAt(t.task(id), env)))}, meta)
	case domain.TaskAccepted:
		meta["agent_id"], meta["generation"] = e.AgentID, e.Generation
		t.tel.Emit("task.accept", nil, meta)
	case domain.TaskProgressed:
		meta["agent_id"], meta["generation"] = e.AgentID, e.Generation
		t.tel.Emit("task.progress", nil, meta)
	case domain.TaskCompleted:
		meta["agent_id"], meta["generation"] = e.AgentID, e.Generation
		t.tel.Emit("task.complete", m{"duration_ms": telemetry.Ms(env.Time.Sub(assignedAt(t.task(id), env)))}, meta)
	default:
		t.taskOutcome(env, meta)
	}
}

// task is the projected task; only the events that measure time or
// retries read it.
func (t tap) task(id string) *domain.Task {
	task, _, _ := t.views.Tasks.Get(id)
	return task
}

// taskOutcome emits the events that end or restart an attempt.
func (t tap) taskOutcome(env domain.Envelope, meta map[string]any) {
	switch e := env.Data.(type) {
	case domain.TaskFailed:
		meta["agent_id"], meta["error"] = e.AgentID, logsink.ScrubText(e.Error) // observers are anonymous
		t.tel.Emit("task.fail", m{"retry_count": float64(e.RetryCount)}, meta)
	case domain.TaskDeadLettered:
		meta["reason"] = e.Reason
		t.tel.Emit("task.dead_letter", m{"retry_count": float64(retries(t.task(env.Aggregate)))}, meta)
	case domain.TaskReclaimed:
		meta["agent_id"], meta["reason"] = e.AgentID, e.Reason
		t.tel.Emit("task.reclaim", nil, meta)
	case domain.TaskRetried:
		meta["reason"] = "failed"
		t.tel.Emit("task.retry", nil, meta)
	case domain.TaskRequeued:
		meta["reason"] = "requeued"
		t.tel.Emit("task.retry", nil, meta)
	case domain.TaskCancelled:
		meta["by"] = e.By
		t.tel.Emit("task.cancel", nil, meta)
	}
}

func (t tap) agentEvent(env domain.Envelope, meta map[string]any) {
	meta["agent_id"] = env.Aggregate
	a, _, _ := t.views.Agents.Get(env.Aggregate)
	switch e := env.Data.(type) {
	case domain.AgentConnected:
		meta["capabilities"] = e.Capabilities
		t.tel.Emit("agent.connect", m{"capabilities": float64(len(e.Capabilities))}, meta)
	case domain.AgentDisconnected:
		meta["reason"] = e.Reason
		t.tel.Emit("agent.disconnect", m{"connected_duration_ms": connectedMs(a, env)}, meta)
	case domain.AgentEvicted:
		t.tel.Emit("agent.evict", m{"stale_ms": float64(e.StaleMS)}, meta)
	}
}

// transition emits fsm.transition for every agent state change.
func (t tap) transition(tr projections.Transition) {
	meta := map[string]any{"agent_id": tr.AgentID, "from": string(tr.From), "to": string(tr.To),
		"task_id": tr.TaskID, "request_id": tr.RequestID}
	t.tel.Emit("fsm.transition", m{"duration_ms": telemetry.Ms(tr.At.Sub(tr.Since))}, meta)
}

func queuedAt(t *domain.Task, env domain.Envelope) time.Time {
	if t == nil {
		return env.Time
	}
	return t.QueuedAt
}

func assignedAt(t *domain.Task, env domain.Envelope) time.Time {
	if t == nil || t.AssignedAt == nil {
		return env.Time
	}
	return *t.AssignedAt
}

func retries(t *domain.Task) int {
	if t == nil {
		return 0
	}
	return t.RetryCount
}

func connectedMs(a *domain.Agent, env domain.Envelope) float64 {
	if a == nil || a.ConnectedAt == nil {
		return 0
	}
	return telemetry.Ms(env.Time.Sub(*a.ConnectedAt))
}
