package domain

import "slices"

// EvolveAgent applies an event to an agent and returns the new state
// (never changing a). It takes the agent's own events, and the events of
// the tasks the agent is named in or holds. A change the state machine
// forbids is not applied; it is counted in Invalid instead.
func EvolveAgent(a *Agent, env Envelope) *Agent {
	if c, ok := env.Data.(AgentConnected); ok {
		return connected(a, env, c)
	}
	if a == nil {
		return nil
	}
	n := a.clone()
	switch e := env.Data.(type) {
	case AgentDisconnected, AgentEvicted:
		n.to(StateOffline, env)
		return n
	case AgentFlagged:
		n.Unresponsive = true
		return n
	case AgentUnflagged:
		n.Unresponsive = false
		return n
	case AgentBlocked:
		n.move(e.TaskID, StateWorking, StateBlocked)
	case AgentUnblocked:
		n.move(e.TaskID, StateBlocked, StateWorking)
	case TaskAssigned:
		h := HeldTask{ID: env.Aggregate, Generation: e.Generation, State: StateAssigned}
		if e.Accepted {
			h.State = StateWorking
		}
		n.take(h)
	case TaskAccepted:
		if i := n.held(env.Aggregate); i >= 0 && n.Tasks[i].State == StateAssigned {
			n.Tasks[i].State = StateWorking
		}
	case TaskCompleted, TaskFailed, TaskReclaimed, TaskCancelled, TaskDeadLettered:
		if i := n.held(env.Aggregate); i >= 0 {
			n.Tasks = slices.Delete(n.Tasks, i, i+1)
		}
	}
	n.settle(env)
	return n
}

// connected resets the agent to what its hello reported and the hub
// accepted: idle, or holding the tasks it resumes.
func connected(a *Agent, env Envelope, c AgentConnected) *Agent {
	n := &Agent{ID: env.Aggregate}
	if a != nil {
		n = a.clone()
	}
	n.Name, n.Capabilities, n.Session, n.MaxTasks = c.Name, c.Capabilities, c.Session, c.MaxTasks
	n.Batch, n.ImpliedAccept = c.Batch, c.ImpliedAccept
	n.ConnectedAt = timePtr(env.Time)
	tasks := slices.Clone(c.Tasks)
	if c.TaskID != "" && len(tasks) == 0 { // an event from before slots
		h := HeldTask{ID: c.TaskID, State: StateAssigned}
		if c.Working {
			h.State = StateWorking
		}
		if old, ok := n.Holding(c.TaskID); ok {
			h.Generation = old.Generation
		}
		tasks = append(tasks, h)
	}
	n.Tasks = tasks
	n.name()
	if state := n.derived(); n.State != state {
		n.State, n.LastStateChange = state, env.Time
	}
	return n
}

// take adds a task the agent is given. An agent whose slots are full
// cannot take one: that is counted, not applied.
func (a *Agent) take(h HeldTask) {
	if i := a.held(h.ID); i >= 0 {
		a.Tasks[i] = h
		return
	}
	if a.Free() == 0 && a.Online() {
		a.Invalid++
		return
	}
	a.Tasks = append(a.Tasks, h)
}

// move changes a held task from one state to another; a task not held, or
// not in from, is counted, not moved.
func (a *Agent) move(id string, from, to AgentState) {
	i := a.held(id)
	if i < 0 || a.Tasks[i].State != from {
		a.Invalid++
		return
	}
	a.Tasks[i].State = to
}

// settle derives the agent's state from what it holds (an offline agent
// stays offline until it says hello), and names its first task.
func (a *Agent) settle(env Envelope) {
	a.name()
	if a.State != StateOffline {
		a.to(a.derived(), env)
	}
}

// name sets CurrentTask and Generation to the first held task.
func (a *Agent) name() {
	a.CurrentTask, a.Generation = "", 0
	if len(a.Tasks) == 0 {
		a.Tasks = nil // one form for none, whether it ever held any
	} else {
		a.CurrentTask, a.Generation = a.Tasks[0].ID, a.Tasks[0].Generation
	}
}

// derived is the state that what the agent holds makes.
func (a *Agent) derived() AgentState {
	state := StateIdle
	for _, h := range a.Tasks {
		switch {
		case h.State == StateWorking:
			return StateWorking
		case h.State == StateBlocked:
			state = StateBlocked
		case state == StateIdle:
			state = StateAssigned
		}
	}
	return state
}

// to moves the agent to another state if the state machine allows it.
func (a *Agent) to(s AgentState, env Envelope) bool {
	if a.State == s {
		return true
	}
	if !CanTransition(a.State, s) {
		a.Invalid++
		return false
	}
	a.State, a.LastStateChange = s, env.Time
	return true
}
