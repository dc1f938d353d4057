package hub

import (
	"sync"
	"time"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/telemetry"
	"github.com/agentcom/agentcom/writer"
)

// tap turns applied events and agent state changes into telemetry. On the
// applier it only notes what the events need from the projections, as
// they stand after the group; the emitter's goroutine builds the events.
type tap struct {
	tel *telemetry.Emitter

	// mu is last in the lock order (projections/views.go): transition
	// takes it under the agent projection's lock.
	mu          sync.Mutex
	transitions []projections.Transition // seen since the last group
}

// transition notes an agent state change (under the agent projection's
// lock); the group it belongs to emits it.
func (t *tap) transition(tr projections.Transition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.transitions = append(t.transitions, tr)
}

// applied hands one applied group to the emitter: its transitions first,
// then the catalog event of each domain event.
func (t *tap) applied(a writer.Applied) {
	t.mu.Lock()
	transitions := t.transitions
	t.transitions = nil
	t.mu.Unlock()
	if len(a.Events) == 0 && len(transitions) == 0 {
		return
	}
	g := group{Applied: a, transitions: transitions}
	t.tel.Later(g.emit)
}

// group is one applied group, which carries each event's task or agent
// after it and the queue depth, and the agent transitions it made.
type group struct {
	writer.Applied
	transitions []projections.Transition
}

func (g group) emit(w telemetry.Writer) {
	for _, tr := range g.transitions {
		w.Event(tr.At, "fsm.transition").Num("duration_ms", telemetry.Ms(tr.At.Sub(tr.Since))).
			Str("agent_id", tr.AgentID).Str("from", string(tr.From)).Str("to", string(tr.To)).
			Str("task_id", tr.TaskID).Str("request_id", tr.RequestID).Send()
	}
	for i, env := range g.Events {
		f := fact{w: w, env: env, task: g.Tasks[i], agent: g.Agents[i], depth: g.QueueDepth}
		if env.IsAgent() {
			f.agentEvent()
		} else {
			f.taskEvent()
		}
	}
}

// fact is one applied domain event with what it reads from the projections.
type fact struct {
	w     telemetry.Writer
	env   domain.Envelope
	task  *domain.Task
	agent *domain.Agent
	depth int
}

// start starts the named event with the ids every event of a task (or of
// an agent) carries.
func (f fact) start(name string) *telemetry.Fields {
	ev := f.w.Event(f.env.Time, name).Str("request_id", f.env.RequestID)
	if f.env.IsAgent() {
		return ev.Str("agent_id", f.env.Aggregate)
	}
	return ev.Str("task_id", f.env.Aggregate).Str("priority", f.priority())
}

// attempt starts an event of an agent's attempt at the task.
func (f fact) attempt(name, agentID string, generation uint64) *telemetry.Fields {
	return f.start(name).Str("agent_id", agentID).Int("generation", int64(generation))
}

func (f fact) taskEvent() {
	env := f.env
	switch e := env.Data.(type) {
	case domain.TaskSubmitted:
		f.start("task.submit").Num("queue_depth", float64(f.depth)).Str("submitted_by", e.SubmittedBy).Send()
	case domain.TaskAssigned:
		f.attempt("task.assign", e.AgentID, e.Generation).
			Num("wait_ms", telemetry.Ms(env.Time.Sub(queuedAt(f.task, env)))).Send()
	case domain.TaskAccepted:
		f.attempt("task.accept", e.AgentID, e.Generation).Send()
	case domain.TaskProgressed:
		f.attempt("task.progress", e.AgentID, e.Generation).Send()
	case domain.TaskCompleted:
		cost := 0.0
		if e.Usage != nil {
			cost = e.Usage.CostUSD
		}
		f.attempt("task.complete", e.AgentID, e.Generation).
			Num("duration_ms", telemetry.Ms(env.Time.Sub(assignedAt(f.task, env)))).
			Num("tokens_used", float64(e.Usage.Tokens())).Num("cost_usd", cost).Send()
	default:
		f.taskOutcome()
	}
}

// taskOutcome emits the events that end or restart an attempt.
func (f fact) taskOutcome() {
	switch e := f.env.Data.(type) {
	case domain.TaskFailed:
		f.start("task.fail").Num("retry_count", float64(e.RetryCount)).Str("agent_id", e.AgentID).
			Str("error", logsink.ScrubText(e.Error)).Send() // observers are anonymous
	case domain.TaskDeadLettered:
		f.start("task.dead_letter").Num("retry_count", float64(retries(f.task))).Str("reason", e.Reason).Send()
	case domain.TaskReclaimed:
		f.start("task.reclaim").Str("agent_id", e.AgentID).Str("reason", e.Reason).Send()
	case domain.TaskRetried:
		var delay time.Duration
		if e.RunAfter != nil {
			delay = e.RunAfter.Sub(f.env.Time)
		}
		f.start("task.retry").Str("reason", "failed").Num("delay_ms", telemetry.Ms(delay)).Send()
	case domain.TaskRequeued:
		f.start("task.retry").Str("reason", "requeued").Num("delay_ms", 0).Send()
	case domain.TaskCancelled:
		f.start("task.cancel").Str("by", e.By).Send()
	case domain.TaskWaiting:
		f.start("task.wait").Num("dependencies", float64(len(e.On))).Send()
	case domain.TaskReleased:
		var waited time.Duration
		if f.task != nil {
			waited = f.env.Time.Sub(f.task.CreatedAt)
		}
		f.start("task.release").Num("wait_ms", telemetry.Ms(waited)).Str("by", e.By).Send()
	}
}

func (f fact) agentEvent() {
	switch e := f.env.Data.(type) {
	case domain.AgentConnected:
		f.start("agent.connect").Num("capabilities", float64(len(e.Capabilities))).
			Strs("capabilities", e.Capabilities).Send()
	case domain.AgentDisconnected:
		f.start("agent.disconnect").Num("connected_duration_ms", connectedMs(f.agent, f.env)).
			Str("reason", e.Reason).Send()
	case domain.AgentEvicted:
		f.start("agent.evict").Num("stale_ms", float64(e.StaleMS)).Send()
	}
}

// priority is the task's priority after the event ("" for a task no
// longer in memory, which a finished one may be).
func (f fact) priority() string {
	if f.task == nil {
		if e, ok := f.env.Data.(domain.TaskSubmitted); ok {
			return e.Priority.String()
		}
		return ""
	}
	return f.task.Priority.String()
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
	return int(t.RetryCount)
}

func connectedMs(a *domain.Agent, env domain.Envelope) float64 {
	if a == nil || a.ConnectedAt == nil {
		return 0
	}
	return telemetry.Ms(env.Time.Sub(*a.ConnectedAt))
}
