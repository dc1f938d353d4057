package domain

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event is a fact that happened to an aggregate. Every event has a stable,
// namespaced type string and a schema version; both are stored with it and
// never derived from Go type names.
type Event interface {
	EventType() string
	SchemaVersion() int
}

// Envelope carries one event with what the store and the logs need to know
// about it. Seq is the stream sequence, set when the event is read back.
type Envelope struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Version   int       `json:"v"`
	Time      time.Time `json:"time"`
	Aggregate string    `json:"aggregate"`
	RequestID string    `json:"request_id,omitempty"`
	Data      Event     `json:"-"`
	Seq       uint64    `json:"-"`
}

// IsAgent tells whether the event belongs to an agent (its aggregate is
// an agent id), not to a task.
func (e Envelope) IsAgent() bool { return strings.HasPrefix(e.Type, "agent.") }

// IsTask tells whether the event belongs to a task.
func (e Envelope) IsTask() bool { return strings.HasPrefix(e.Type, "task.") }

// The task event type strings. They are part of the stored format: never
// rename one.
const (
	TypeTaskSubmitted    = "task.submitted"
	TypeTaskAssigned     = "task.assigned"
	TypeTaskAccepted     = "task.accepted"
	TypeTaskProgressed   = "task.progressed"
	TypeTaskCompleted    = "task.completed"
	TypeTaskFailed       = "task.failed"
	TypeTaskRetried      = "task.retried"
	TypeTaskDeadLettered = "task.dead_lettered"
	TypeTaskReclaimed    = "task.reclaimed"
	TypeTaskCancelled    = "task.cancelled"
	TypeTaskRequeued     = "task.requeued"
	TypeTaskCompacted    = "task.compacted"
)

// TaskCompacted replaces every earlier event of a finished task: it
// carries the task's final state, so replaying it alone rebuilds the task.
// Order is the task's place in the queue (its submission's sequence).
type TaskCompacted struct {
	Task  Task   `json:"task"`
	Order uint64 `json:"order"`
}

// TaskSubmitted creates a task. It carries everything the task starts with.
type TaskSubmitted struct {
	Description        string          `json:"description"`
	Priority           Priority        `json:"priority"`
	Metadata           json.RawMessage `json:"metadata,omitempty"`
	NeededCapabilities []string        `json:"needed_capabilities,omitempty"`
	MaxRetries         int32           `json:"max_retries"`
	MaxReclaims        int32           `json:"max_reclaims"`
	CompleteBy         *time.Time      `json:"complete_by,omitempty"`
	SubmittedBy        string          `json:"submitted_by,omitempty"`
	RunAt              *time.Time      `json:"run_at,omitempty"`
	RetryBase          Duration        `json:"retry_base,omitempty"`
	RetryMax           Duration        `json:"retry_max,omitempty"`
	// *Workflow: depends_on, goal_id, schedule and tick, idempotency_key.
	*Workflow
}

// TaskAssigned gives a queued task to an agent under a new generation.
type TaskAssigned struct {
	AgentID    string `json:"agent_id"`
	Generation uint64 `json:"generation"`
	// Accepted: the agent takes its assignments as accepted when made
	// (its hello's implied_accept); the task is working at once.
	Accepted bool `json:"accepted,omitempty"`
}

// TaskAccepted records that the assigned agent started the task.
type TaskAccepted struct {
	AgentID    string `json:"agent_id"`
	Generation uint64 `json:"generation"`
}

// TaskProgressed is a heartbeat from the agent working on the task.
type TaskProgressed struct {
	AgentID    string `json:"agent_id"`
	Generation uint64 `json:"generation"`
	Message    string `json:"message,omitempty"`
}

// TaskCompleted finishes the task with the agent's result.
type TaskCompleted struct {
	AgentID    string          `json:"agent_id"`
	Generation uint64          `json:"generation"`
	Result     json.RawMessage `json:"result,omitempty"`
	Usage      *Usage          `json:"usage,omitempty"` // what the attempt cost, as the agent reported
}

// TaskFailed records a failed attempt; RetryCount is the count after it.
// A TaskRetried or TaskDeadLettered event always follows in the same append.
type TaskFailed struct {
	AgentID    string `json:"agent_id"`
	Generation uint64 `json:"generation"`
	Error      string `json:"error"`
	RetryCount int32  `json:"retry_count"`
}

// TaskRetried puts a failed task back in the queue under a new generation,
// to be handed out again at RunAfter (the backoff; absent in events
// written before backoff existed: at once).
type TaskRetried struct {
	Generation uint64     `json:"generation"`
	RunAfter   *time.Time `json:"run_after,omitempty"`
}

// TaskDeadLettered parks a task that ran out of retries or reclaims.
type TaskDeadLettered struct {
	Reason string `json:"reason"`
}

// TaskReclaimed takes a task back from its agent and queues it again under
// a new generation. ReclaimCount is the count after it.
type TaskReclaimed struct {
	AgentID      string `json:"agent_id"`
	Reason       string `json:"reason"`
	Generation   uint64 `json:"generation"`
	ReclaimCount int32  `json:"reclaim_count"`
}

// TaskCancelled ends a task for good.
type TaskCancelled struct {
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// TaskRequeued brings a dead-lettered task back to the queue with fresh
// retry and reclaim counts.
type TaskRequeued struct {
	By         string `json:"by,omitempty"`
	Generation uint64 `json:"generation"`
}

// EventType implements Event.
func (TaskSubmitted) EventType() string    { return TypeTaskSubmitted }
func (TaskAssigned) EventType() string     { return TypeTaskAssigned }
func (TaskAccepted) EventType() string     { return TypeTaskAccepted }
func (TaskProgressed) EventType() string   { return TypeTaskProgressed }
func (TaskCompleted) EventType() string    { return TypeTaskCompleted }
func (TaskFailed) EventType() string       { return TypeTaskFailed }
func (TaskRetried) EventType() string      { return TypeTaskRetried }
func (TaskDeadLettered) EventType() string { return TypeTaskDeadLettered }
func (TaskReclaimed) EventType() string    { return TypeTaskReclaimed }
func (TaskCancelled) EventType() string    { return TypeTaskCancelled }
func (TaskRequeued) EventType() string     { return TypeTaskRequeued }
func (TaskCompacted) EventType() string    { return TypeTaskCompacted }

// SchemaVersion implements Event. Bump a version when an event's fields
// change meaning, and teach DecodeEvent to read the old one.
func (TaskSubmitted) SchemaVersion() int    { return 3 } // 2: run_at, retry_base, retry_max; 3: the workflow
func (TaskAssigned) SchemaVersion() int     { return 1 }
func (TaskAccepted) SchemaVersion() int     { return 1 }
func (TaskProgressed) SchemaVersion() int   { return 1 }
func (TaskCompleted) SchemaVersion() int    { return 1 }
func (TaskFailed) SchemaVersion() int       { return 1 }
func (TaskRetried) SchemaVersion() int      { return 2 } // 2: run_after
func (TaskDeadLettered) SchemaVersion() int { return 1 }
func (TaskReclaimed) SchemaVersion() int    { return 1 }
func (TaskCancelled) SchemaVersion() int    { return 1 }
func (TaskRequeued) SchemaVersion() int     { return 1 }
func (TaskCompacted) SchemaVersion() int    { return 1 }

// eventCodec decodes one event type and knows its current schema version.
type eventCodec struct {
	version int
	decode  func(json.RawMessage) (Event, error)
}

func codecFor[T Event]() eventCodec {
	var zero T
	return eventCodec{version: zero.SchemaVersion(), decode: func(b json.RawMessage) (Event, error) {
		var v T
		err := json.Unmarshal(b, &v)
		return v, err
	}}
}

// registry maps a stored type string to its codec.
var registry = map[string]eventCodec{
	TypeTaskSubmitted:    codecFor[TaskSubmitted](),
	TypeTaskAssigned:     codecFor[TaskAssigned](),
	TypeTaskAccepted:     codecFor[TaskAccepted](),
	TypeTaskProgressed:   codecFor[TaskProgressed](),
	TypeTaskCompleted:    codecFor[TaskCompleted](),
	TypeTaskFailed:       codecFor[TaskFailed](),
	TypeTaskRetried:      codecFor[TaskRetried](),
	TypeTaskDeadLettered: codecFor[TaskDeadLettered](),
	TypeTaskReclaimed:    codecFor[TaskReclaimed](),
	TypeTaskCancelled:    codecFor[TaskCancelled](),
	TypeTaskRequeued:     codecFor[TaskRequeued](),
	TypeTaskCompacted:    codecFor[TaskCompacted](),
	TypeTaskWaiting:      codecFor[TaskWaiting](),
	TypeTaskReleased:     codecFor[TaskReleased](),
	TypeGoalCreated:      codecFor[GoalCreated](),
	TypeGoalCompleted:    codecFor[GoalCompleted](),
	TypeGoalFailed:       codecFor[GoalFailed](),
	TypeGoalCancelled:    codecFor[GoalCancelled](),
	TypeGoalReopened:     codecFor[GoalReopened](),
	TypeScheduleCreated:  codecFor[ScheduleCreated](),
	TypeScheduleDeleted:  codecFor[ScheduleDeleted](),

	TypeAgentConnected:    codecFor[AgentConnected](),
	TypeAgentDisconnected: codecFor[AgentDisconnected](),
	TypeAgentEvicted:      codecFor[AgentEvicted](),
	TypeAgentFlagged:      codecFor[AgentFlagged](),
	TypeAgentUnflagged:    codecFor[AgentUnflagged](),
	TypeAgentBlocked:      codecFor[AgentBlocked](),
	TypeAgentUnblocked:    codecFor[AgentUnblocked](),

	TypeStoreLossAccepted:     codecFor[StoreLossAccepted](),
	TypeStoreEventQuarantined: codecFor[StoreEventQuarantined](),
	TypeConfigChanged:         codecFor[ConfigChanged](),
}

// EventTypes lists every registered event type string.
func EventTypes() []string {
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	return out
}

// storedEnvelope is the JSON form of an Envelope.
type storedEnvelope struct {
	Envelope
	Data json.RawMessage `json:"data"`
}

// EncodeEnvelope returns the stored JSON form of env.
func EncodeEnvelope(env Envelope) ([]byte, error) {
	data, err := json.Marshal(env.Data)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", env.Type, err)
	}
	return appendEnvelope(make([]byte, 0, 160+len(data)), env, data), nil
}

// appendEnvelope writes env's stored form around its encoded data, as
// json.Marshal of a storedEnvelope would, without encoding data twice.
func appendEnvelope(b []byte, env Envelope, data []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, env.ID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, env.Type)
	b = append(b, `,"v":`...)
	b = strconv.AppendInt(b, int64(env.Version), 10)
	b = append(b, `,"time":"`...)
	b = env.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","aggregate":`...)
	b = appendJSONString(b, env.Aggregate)
	if env.RequestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendJSONString(b, env.RequestID)
	}
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: as it is when it needs no
// escaping (the usual id or type), else as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// DecodeEnvelope reads a stored envelope. An unknown type or a newer schema
// version than this code knows is an error: skipping it would silently
// build wrong state.
func DecodeEnvelope(b []byte) (Envelope, error) {
	var s storedEnvelope
	if err := json.Unmarshal(b, &s); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	c, ok := registry[s.Type]
	if !ok {
		return Envelope{}, fmt.Errorf("decode envelope %s: %w", s.ID, &UnknownEventError{Type: s.Type})
	}
	if s.Version > c.version {
		return Envelope{}, fmt.Errorf("decode envelope %s: %w", s.ID,
			&UnknownEventError{Type: s.Type, Version: s.Version})
	}
	ev, err := c.decode(s.Data)
	if err != nil {
		return Envelope{}, fmt.Errorf("decode event %s %s: %w", s.Type, s.ID, err)
	}
	env := s.Envelope
	env.Data = ev
	return env, nil
}
