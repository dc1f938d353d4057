package domain

import (
	"errors"
	"fmt"
	"time"
)

// AgentCommand is a request to change one agent. DecideAgent returns the
// events that carry it out against the agent's state (nil if unknown), or
// a typed error; it never changes a.
type AgentCommand interface {
	AgentID() string
	DecideAgent(a *Agent, now time.Time) ([]Event, error)
}

// ErrStaleSession means an event names a connection the agent has since
// replaced.
var ErrStaleSession = errors.New("stale session")

// AgentNotFoundError names the agent that does not exist.
type AgentNotFoundError struct{ AgentID string }

func (e *AgentNotFoundError) Error() string        { return fmt.Sprintf("agent %s not found", e.AgentID) }
func (e *AgentNotFoundError) Is(target error) bool { return target == ErrNotFound }

// AgentStateError says which command the agent's state refused.
type AgentStateError struct {
	AgentID string
	State   AgentState
	Command string
}

func (e *AgentStateError) Error() string {
	return fmt.Sprintf("cannot %s agent %s: it is %s", e.Command, e.AgentID, e.State)
}
func (e *AgentStateError) Is(target error) bool { return target == ErrInvalidState }

// CanAssign checks that an agent may take a task: it exists, is online,
// has a free slot besides the reserved ones (assignments on their way),
// is not flagged unresponsive, and has every capability the task needs.
func CanAssign(a *Agent, agentID string, t *Task, reserved int) error {
	switch {
	case a == nil:
		return &AgentNotFoundError{AgentID: agentID}
	case !a.Online() || (a.Slots() == 1 && a.State != StateIdle):
		return &AgentStateError{AgentID: agentID, State: a.State, Command: "assign a task to"}
	case a.Free() <= reserved:
		return &AgentStateError{AgentID: agentID, State: AgentState(fmt.Sprintf("full (%d tasks in %d slots)",
			len(a.Tasks)+reserved, a.Slots())), Command: "assign a task to"}
	case a.Unresponsive:
		return &AgentStateError{AgentID: agentID, State: "unresponsive", Command: "assign a task to"}
	case t != nil && !a.CanRun(t):
		return &AgentStateError{AgentID: agentID, State: "lacking capabilities", Command: "assign " + t.ID + " to"}
	}
	return nil
}

// ConnectAgent records a hello. Tasks are the tasks the agent resumes;
// MaxTasks is how many it runs at once (0: one).
type ConnectAgent struct {
	ID, Name, Session string
	Capabilities      []string
	MaxTasks          int
	Batch             bool
	ImpliedAccept     bool
	Tasks             []HeldTask
}

// AgentID implements AgentCommand.
func (c ConnectAgent) AgentID() string { return c.ID }

// DecideAgent implements AgentCommand.
func (c ConnectAgent) DecideAgent(_ *Agent, _ time.Time) ([]Event, error) {
	v := &ValidationError{}
	if c.Session == "" {
		v.Add("session", "required", "session is required")
	}
	ValidateCapabilities(v, "capabilities", c.Capabilities)
	if c.MaxTasks < 0 || c.MaxTasks > MaxAgentTasks {
		v.Add("max_tasks", "out_of_range", fmt.Sprintf("max_tasks must be between 1 and %d", MaxAgentTasks))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return []Event{AgentConnected{Name: c.Name, Capabilities: sortedSet(c.Capabilities), Session: c.Session,
		MaxTasks: c.MaxTasks, Batch: c.Batch, ImpliedAccept: c.ImpliedAccept, Tasks: c.Tasks}}, nil
}

// DisconnectAgent records a lost or closed connection. A Session that is
// not the agent's current one is refused: a replaced connection's end
// must not take the new one offline.
type DisconnectAgent struct{ ID, Session, Reason string }

// AgentID implements AgentCommand.
func (c DisconnectAgent) AgentID() string { return c.ID }

// DecideAgent implements AgentCommand.
func (c DisconnectAgent) DecideAgent(a *Agent, _ time.Time) ([]Event, error) {
	if err := needAgent(a, c.ID, "disconnect"); err != nil {
		return nil, err
	}
	if c.Session != "" && c.Session != a.Session {
		return nil, fmt.Errorf("disconnect agent %s: %w", c.ID, ErrStaleSession)
	}
	return []Event{AgentDisconnected{Session: a.Session, Reason: c.Reason}}, nil
}

// EvictAgent records the reaper removing an agent silent for StaleMS.
type EvictAgent struct {
	ID      string
	StaleMS int64
}

// AgentID implements AgentCommand.
func (c EvictAgent) AgentID() string { return c.ID }

// DecideAgent implements AgentCommand.
func (c EvictAgent) DecideAgent(a *Agent, _ time.Time) ([]Event, error) {
	if err := needAgent(a, c.ID, "evict"); err != nil {
		return nil, err
	}
	return []Event{AgentEvicted{StaleMS: c.StaleMS}}, nil
}

// FlagAgent marks an agent unresponsive.
type FlagAgent struct{ ID, Reason, TaskID string }

// AgentID implements AgentCommand.
func (c FlagAgent) AgentID() string { return c.ID }

// DecideAgent implements AgentCommand.
func (c FlagAgent) DecideAgent(a *Agent, _ time.Time) ([]Event, error) {
	if a == nil {
		return nil, &AgentNotFoundError{AgentID: c.ID}
	}
	if a.Unresponsive {
		return nil, &AgentStateError{AgentID: c.ID, State: "unresponsive", Command: "flag"}
	}
	return []Event{AgentFlagged{Reason: c.Reason, TaskID: c.TaskID}}, nil
}

// UnflagAgent clears the unresponsive flag once the agent proves alive.
type UnflagAgent struct{ ID string }

// AgentID implements AgentCommand.
func (c UnflagAgent) AgentID() string { return c.ID }

// DecideAgent implements AgentCommand.
func (c UnflagAgent) DecideAgent(a *Agent, _ time.Time) ([]Event, error) {
	if a == nil {
		return nil, &AgentNotFoundError{AgentID: c.ID}
	}
	if !a.Unresponsive {
		return nil, &AgentStateError{AgentID: c.ID, State: a.State, Command: "unflag"}
	}
	return []Event{AgentUnflagged{}}, nil
}

// needAgent checks that the agent exists and is online.
func needAgent(a *Agent, id, command string) error {
	if a == nil {
		return &AgentNotFoundError{AgentID: id}
	}
	if a.State == StateOffline {
		return &AgentStateError{AgentID: id, State: a.State, Command: command}
	}
	return nil
}

func sortedSet(in []string) []string {
	out := append([]string(nil), in...)
	sortStrings(out)
	return compact(out)
}

// BlockAgent records that the agent's work waits on something outside it.
type BlockAgent struct{ ID, TaskID, Reason string }

// AgentID implements AgentCommand.
func (c BlockAgent) AgentID() string { return c.ID }

// DecideAgent implements AgentCommand.
func (c BlockAgent) DecideAgent(a *Agent, _ time.Time) ([]Event, error) {
	if err := holds(a, c.ID, c.TaskID, "block", StateWorking); err != nil {
		return nil, err
	}
	return []Event{AgentBlocked{TaskID: c.TaskID, Reason: truncate(c.Reason)}}, nil
}

// UnblockAgent records that the agent's work goes on.
type UnblockAgent struct{ ID, TaskID string }

// AgentID implements AgentCommand.
func (c UnblockAgent) AgentID() string { return c.ID }

// DecideAgent implements AgentCommand.
func (c UnblockAgent) DecideAgent(a *Agent, _ time.Time) ([]Event, error) {
	if err := holds(a, c.ID, c.TaskID, "unblock", StateBlocked); err != nil {
		return nil, err
	}
	return []Event{AgentUnblocked{TaskID: c.TaskID}}, nil
}

// holds checks that the agent holds the task, in state.
func holds(a *Agent, id, taskID, command string, state AgentState) error {
	if a == nil {
		return &AgentNotFoundError{AgentID: id}
	}
	h, ok := a.Holding(taskID)
	switch {
	case !a.Online():
		return &AgentStateError{AgentID: id, State: a.State, Command: command + " " + taskID + " for"}
	case !ok:
		return &AgentStateError{AgentID: id, State: "not holding it", Command: command + " " + taskID + " for"}
	case h.State != state:
		return &AgentStateError{AgentID: id, State: AgentState(string(h.State) + " on it"), Command: command + " " + taskID + " for"}
	}
	return nil
}
