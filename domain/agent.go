package domain

import (
	"slices"
	"time"
)

// AgentState is where an agent is in its state machine.
type AgentState string

// The agent states.
const (
	StateIdle     AgentState = "idle"
	StateAssigned AgentState = "assigned"
	StateWorking  AgentState = "working"
	StateBlocked  AgentState = "blocked"
	StateOffline  AgentState = "offline"
)

// transitions is the agent state machine (the original's table, plus
// offline -> idle/assigned/working for a reconnect that resumes).
var transitions = map[AgentState][]AgentState{
	StateIdle:     {StateAssigned, StateOffline},
	StateAssigned: {StateWorking, StateIdle, StateOffline},
	StateWorking:  {StateIdle, StateBlocked, StateOffline},
	StateBlocked:  {StateWorking, StateIdle, StateOffline},
	StateOffline:  {StateIdle, StateAssigned, StateWorking},
}

// CanTransition reports whether the state machine allows from -> to.
func CanTransition(from, to AgentState) bool { return slices.Contains(transitions[from], to) }

// Agent is the state of one agent, built from its own events and from the
// events of the tasks it holds.
type Agent struct {
	ID              string     `json:"agent_id"`
	Name            string     `json:"name,omitempty"`
	Capabilities    []string   `json:"capabilities"`
	State           AgentState `json:"fsm_state"`
	CurrentTask     string     `json:"current_task_id,omitempty"`
	Generation      uint64     `json:"generation,omitempty"`
	Unresponsive    bool       `json:"unresponsive"`
	Session         string     `json:"session,omitempty"`
	ConnectedAt     *time.Time `json:"connected_at,omitempty"`
	LastStateChange time.Time  `json:"last_state_change"`
	// Invalid counts events that implied a transition the state machine
	// forbids; they were not applied.
	Invalid int `json:"invalid_transitions,omitempty"`
}

// Flags lists the agent's flags (only "unresponsive" so far).
func (a *Agent) Flags() []string {
	if a.Unresponsive {
		return []string{"unresponsive"}
	}
	return []string{}
}

// Online reports whether the agent is connected.
func (a *Agent) Online() bool { return a.State != StateOffline }

// Available reports whether the scheduler may give the agent a task.
func (a *Agent) Available() bool { return a.State == StateIdle && !a.Unresponsive }

// CanRun reports whether the agent has every capability the task needs.
func (a *Agent) CanRun(t *Task) bool {
	for _, c := range t.NeededCapabilities {
		if !slices.Contains(a.Capabilities, c) {
			return false
		}
	}
	return true
}

func (a *Agent) clone() *Agent {
	c := *a
	return &c
}

// Agent event type strings. Never rename one.
const (
	TypeAgentConnected    = "agent.connected"
	TypeAgentDisconnected = "agent.disconnected"
	TypeAgentEvicted      = "agent.evicted"
	TypeAgentFlagged      = "agent.flagged_unresponsive"
	TypeAgentUnflagged    = "agent.unflagged"
	TypeAgentBlocked      = "agent.blocked"
	TypeAgentUnblocked    = "agent.unblocked"
)

// AgentConnected records a hello. TaskID is set when the agent resumes a
// task it held (the hub answered continue).
type AgentConnected struct {
	Name         string   `json:"name,omitempty"`
	Capabilities []string `json:"capabilities"`
	Session      string   `json:"session"`
	TaskID       string   `json:"task_id,omitempty"`
	Working      bool     `json:"working,omitempty"`
}

// AgentDisconnected records a lost or closed connection.
type AgentDisconnected struct {
	Session string `json:"session,omitempty"`
	Reason  string `json:"reason"`
}

// AgentEvicted records the reaper removing a silent agent.
type AgentEvicted struct {
	StaleMS int64 `json:"stale_ms"`
}

// AgentFlagged marks an agent unresponsive: it gets no work until it
// proves alive.
type AgentFlagged struct {
	Reason string `json:"reason"`
	TaskID string `json:"task_id,omitempty"`
}

// AgentUnflagged clears the unresponsive flag.
type AgentUnflagged struct{}

// AgentBlocked records that the agent's work waits on something outside.
type AgentBlocked struct {
	TaskID string `json:"task_id"`
	Reason string `json:"reason,omitempty"`
}

// AgentUnblocked records that the agent's work goes on.
type AgentUnblocked struct {
	TaskID string `json:"task_id"`
}

// EventType implements Event.
func (AgentConnected) EventType() string    { return TypeAgentConnected }
func (AgentDisconnected) EventType() string { return TypeAgentDisconnected }
func (AgentEvicted) EventType() string      { return TypeAgentEvicted }
func (AgentFlagged) EventType() string      { return TypeAgentFlagged }
func (AgentUnflagged) EventType() string    { return TypeAgentUnflagged }
func (AgentBlocked) EventType() string      { return TypeAgentBlocked }
func (AgentUnblocked) EventType() string    { return TypeAgentUnblocked }

// SchemaVersion implements Event.
func (AgentConnected) SchemaVersion() int    { return 1 }
func (AgentDisconnected) SchemaVersion() int { return 1 }
func (AgentEvicted) SchemaVersion() int      { return 1 }
func (AgentFlagged) SchemaVersion() int      { return 1 }
func (AgentUnflagged) SchemaVersion() int    { return 1 }
func (AgentBlocked) SchemaVersion() int      { return 1 }
func (AgentUnblocked) SchemaVersion() int    { return 1 }
