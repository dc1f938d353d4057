package hub

import (
	"sync"
	"time"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/telemetry"
)

// tap turns applied events and agent state changes into telemetry. On the
// applier it only notes what the events need from the projections, as
// they stand after the group; the emitter's goroutine builds the events.
type tap struct {
	tel   *telemetry.Emitter
	views *projections.Views

	mu          sync.Mutex
	transitions []projections.Transition // seen since the last group
}

type m = map[string]float64

// transition notes an agent state change (under the agent projection's
// lock); the group it belongs to emits it.
func (t *tap) transition(tr projections.Transition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.transitions = append(t.transitions, tr)
}

// applied hands one applied group to the emitter: its transitions first,
// then the catalog event of each domain event.
func (t *tap) applied(envs []domain.Envelope) {
	t.mu.Lock()
	if len(envs) == 0 && len(t.transitions) == 0 {
		t.mu.Unlock()
		return
	}
	g := group{envs: envs, transitions: t.transitions, depth: t.views.Tasks.QueueDepth(),
		tasks: make([]*domain.Task, len(envs)), agents: make([]*domain.Agent, len(envs))}
	t.transitions = nil
	t.mu.Unlock()
	for i, env := range envs {
		if env.IsAgent() {
			g.agents[i], _, _ = t.views.Agents.Get(env.Aggregate)
		} else {
			g.tasks[i], _, _ = t.views.Tasks.Get(env.Aggregate)
		}
	}
	t.tel.Later(g.emit)
}

// group is one applied group with what its events read from the
// projections: each event's task or agent, and the queue depth.
type group struct {
	envs        []domain.Envelope
	tasks       []*domain.Task
	agents      []*domain.Agent
	depth       int
	transitions []projections.Transition
}

func (g group) emit(emit telemetry.EmitAt) {
	for _, tr := range g.transitions {
		meta := map[string]any{"agent_id": tr.AgentID, "from": string(tr.From), "to": string(tr.To),
			"task_id": tr.TaskID, "request_id": tr.RequestID}
		emit(tr.At, "fsm.transition", m{"duration_ms": telemetry.Ms(tr.At.Sub(tr.Since))}, meta)
	}
	for i, env := range g.envs {
		t := fact{emit: emit, env: env, task: g.tasks[i], agent: g.agents[i], depth: g.depth}
		t.event()
	}
}

// fact is one applied domain event with what it reads from the projections.
type fact struct {
	emit  telemetry.EmitAt
	env   domain.Envelope
	task  *domain.Task
	agent *domain.Agent
	depth int
}

func (f fact) event() {
	env := f.env
	meta := map[string]any{"request_id": env.RequestID}
	if env.IsAgent() {
		f.agentEvent(meta)
		return
	}
	meta["task_id"] = env.Aggregate
	switch e := env.Data.(type) {
	case domain.TaskSubmitted:
		meta["priority"], meta["submitted_by"] = e.Priority.String(), e.SubmittedBy
		f.emit(env.Time, "task.submit", m{"queue_depth": float64(f.depth)}, meta)
	case domain.TaskAssigned:
		meta["agent_id"], meta["generation"] = e.AgentID, e.Generation
		f.emit(env.Time, "task.assign", m{"wait_ms": telemetry.Ms(env.Time.Sub(queuedAt(f.task, env)))}, meta)
	case domain.TaskAccepted:
		meta["agent_id"], meta["generation"] = e.AgentID, e.Generation
		f.emit(env.Time, "task.accept", nil, meta)
	case domain.TaskProgressed:
		meta["agent_id"], meta["generation"] = e.AgentID, e.Generation
		f.emit(env.Time, "task.progress", nil, meta)
	case domain.TaskCompleted:
		meta["agent_id"], meta["generation"] = e.AgentID, e.Generation
		f.emit(env.Time, "task.complete", m{"duration_ms": telemetry.Ms(env.Time.Sub(assignedAt(f.task, env)))}, meta)
	default:
		f.taskOutcome(meta)
	}
}

// taskOutcome emits the events that end or restart an attempt.
func (f fact) taskOutcome(meta map[string]any) {
	env := f.env
	switch e := env.Data.(type) {
	case domain.TaskFailed:
		meta["agent_id"], meta["error"] = e.AgentID, logsink.ScrubText(e.Error) // observers are anonymous
		f.emit(env.Time, "task.fail", m{"retry_count": float64(e.RetryCount)}, meta)
	case domain.TaskDeadLettered:
		meta["reason"] = e.Reason
		f.emit(env.Time, "task.dead_letter", m{"retry_count": float64(retries(f.task))}, meta)
	case domain.TaskReclaimed:
		meta["agent_id"], meta["reason"] = e.AgentID, e.Reason
		f.emit(env.Time, "task.reclaim", nil, meta)
	case domain.TaskRetried:
		meta["reason"] = "failed"
		f.emit(env.Time, "task.retry", nil, meta)
	case domain.TaskRequeued:
		meta["reason"] = "requeued"
		f.emit(env.Time, "task.retry", nil, meta)
	case domain.TaskCancelled:
		meta["by"] = e.By
		f.emit(env.Time, "task.cancel", nil, meta)
	}
}

func (f fact) agentEvent(meta map[string]any) {
	env := f.env
	meta["agent_id"] = env.Aggregate
	switch e := env.Data.(type) {
	case domain.AgentConnected:
		meta["capabilities"] = e.Capabilities
		f.emit(env.Time, "agent.connect", m{"capabilities": float64(len(e.Capabilities))}, meta)
	case domain.AgentDisconnected:
		meta["reason"] = e.Reason
		f.emit(env.Time, "agent.disconnect", m{"connected_duration_ms": connectedMs(f.agent, env)}, meta)
	case domain.AgentEvicted:
		f.emit(env.Time, "agent.evict", m{"stale_ms": float64(e.StaleMS)}, meta)
	}
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
