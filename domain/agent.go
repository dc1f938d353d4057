package domain

import (
	"slices"
	"strings"
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
// offline -> idle/assigned/working for a reconnect that resumes,
// working/blocked -> assigned for an agent with several slots whose last
// started task ends while one it has not started yet waits, and idle ->
// working for an assignment accepted when made).
var transitions = map[AgentState][]AgentState{
	StateIdle:     {StateAssigned, StateWorking, StateOffline},
	StateAssigned: {StateWorking, StateIdle, StateOffline},
	StateWorking:  {StateIdle, StateBlocked, StateAssigned, StateOffline},
	StateBlocked:  {StateWorking, StateIdle, StateAssigned, StateOffline},
	StateOffline:  {StateIdle, StateAssigned, StateWorking, StateBlocked},
}

// MaxAgentTasks bounds an agent's slots (max_tasks).
const MaxAgentTasks = 1000

// HeldTask is one task an agent holds and where it is with it: assigned
// (not started), working or blocked.
type HeldTask struct {
	ID         string     `json:"task_id"`
	Generation uint64     `json:"generation"`
	State      AgentState `json:"state"`
}

// CanTransition reports whether the state machine allows from -> to.
func CanTransition(from, to AgentState) bool { return slices.Contains(transitions[from], to) }

// Agent is the state of one agent, built from its own events and from the
// events of the tasks it holds. An agent has MaxTasks slots; its state
// follows what it holds: idle (nothing), working (a task started), blocked
// (every started task waits on something outside), assigned (none started
// yet), or offline.
type Agent struct {
	ID           string     `json:"agent_id"`
	Name         string     `json:"name,omitempty"`
	Capabilities []string   `json:"capabilities"`
	State        AgentState `json:"fsm_state"`
	// MaxTasks is how many tasks the agent runs at once (its hello's
	// max_tasks; 0, in events from before slots, means 1).
	MaxTasks int `json:"max_tasks,omitempty"`
	// Batch and ImpliedAccept are what its hello asked for: several
	// assignments in one push, and assignments accepted when made.
	Batch         bool `json:"batch,omitempty"`
	ImpliedAccept bool `json:"implied_accept,omitempty"`
	// Tasks are the tasks it holds, oldest first. CurrentTask and
	// Generation name the first of them, for readers of one task.
	Tasks           []HeldTask `json:"tasks,omitempty"`
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

// Available reports whether the scheduler may give the agent a task: it
// is online, not flagged, and has a free slot.
func (a *Agent) Available() bool { return a.Online() && !a.Unresponsive && a.Free() > 0 }

// Slots is how many tasks the agent runs at once.
func (a *Agent) Slots() int { return max(a.MaxTasks, 1) }

// Free is how many more tasks the agent can take.
func (a *Agent) Free() int { return max(a.Slots()-len(a.Tasks), 0) }

// Holding returns the task the agent holds under id, if it does.
func (a *Agent) Holding(id string) (HeldTask, bool) {
	if i := a.held(id); i >= 0 {
		return a.Tasks[i], true
	}
	return HeldTask{}, false
}

func (a *Agent) held(id string) int {
	return slices.IndexFunc(a.Tasks, func(h HeldTask) bool { return h.ID == id })
}

// Upgrade fills Tasks from CurrentTask for an agent stored before slots
// (a snapshot of an older hub): the task it holds is working unless the
// agent is assigned.
func (a *Agent) Upgrade() {
	if len(a.Tasks) > 0 || a.CurrentTask == "" {
		return
	}
	state := StateWorking
	if a.State == StateAssigned || a.State == StateBlocked {
		state = a.State
	}
	a.Tasks = []HeldTask{{ID: a.CurrentTask, Generation: a.Generation, State: state}}
}

// pinPrefix starts the capabilities that name one agent.
const pinPrefix = "agent:"

// PinCapability is the capability only agent id has: a task that needs
// it is for that agent alone (an operator's push-task).
func PinCapability(agentID string) string { return pinPrefix + agentID }

// CanRun reports whether the agent has every capability the task needs.
// A pin capability (agent:<id>) is its own alone, whatever it declared.
func (a *Agent) CanRun(t *Task) bool {
	for _, c := range t.NeededCapabilities {
		if strings.HasPrefix(c, pinPrefix) {
			if c != PinCapability(a.ID) {
				return false
			}
			continue
		}
		if !slices.Contains(a.Capabilities, c) {
			return false
		}
	}
	return true
}

func (a *Agent) clone() *Agent {
	c := *a
	c.Tasks = slices.Clone(a.Tasks)
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

// AgentConnected records a hello. Tasks are the tasks the agent resumes
// (the hub answered continue). TaskID and Working are how events from
// before slots named the one task resumed; they are read, never written.
type AgentConnected struct {
	Name          string     `json:"name,omitempty"`
	Capabilities  []string   `json:"capabilities"`
	Session       string     `json:"session"`
	MaxTasks      int        `json:"max_tasks,omitempty"`
	Batch         bool       `json:"batch,omitempty"`
	ImpliedAccept bool       `json:"implied_accept,omitempty"`
	Tasks         []HeldTask `json:"tasks,omitempty"`
	TaskID        string     `json:"task_id,omitempty"`
	Working       bool       `json:"working,omitempty"`
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
