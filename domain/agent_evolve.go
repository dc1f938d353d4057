package domain

// EvolveAgent applies an event to an agent and returns the new state
// (never changing a). It takes the agent's own events, and the events of
// the task the agent is named in or holds. A change the state machine
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
	case AgentFlagged:
		n.Unresponsive = true
	case AgentUnflagged:
		n.Unresponsive = false
	case AgentBlocked:
		n.to(StateBlocked, env)
	case AgentUnblocked:
		n.to(StateWorking, env)
	case TaskAssigned:
		if n.to(StateAssigned, env) {
			n.CurrentTask, n.Generation = env.Aggregate, e.Generation
		}
	case TaskAccepted:
		if n.CurrentTask == env.Aggregate {
			n.to(StateWorking, env)
		}
	case TaskCompleted, TaskFailed, TaskReclaimed, TaskCancelled, TaskDeadLettered:
		n.release(env)
	}
	return n
}

// connected resets the agent to what its hello reported and the hub
// accepted: idle, or holding the task it resumes.
func connected(a *Agent, env Envelope, c AgentConnected) *Agent {
	n := &Agent{ID: env.Aggregate}
	if a != nil {
		n = a.clone()
	}
	n.Name, n.Capabilities, n.Session = c.Name, c.Capabilities, c.Session
	n.ConnectedAt = timePtr(env.Time)
	state := StateIdle
	switch {
	case c.TaskID != "" && c.Working:
		state = StateWorking
	case c.TaskID != "":
		state = StateAssigned
	}
	if c.TaskID != n.CurrentTask {
		n.Generation = 0
	}
	n.CurrentTask = c.TaskID
	if n.State != state {
		n.State, n.LastStateChange = state, env.Time
	}
	return n
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

// release frees the agent of the task the event ends or takes back, if it
// is the one the agent holds: it becomes idle, or stays offline.
func (a *Agent) release(env Envelope) {
	if a.CurrentTask != env.Aggregate {
		return
	}
	a.CurrentTask, a.Generation = "", 0
	if a.State != StateOffline {
		a.to(StateIdle, env)
	}
}
