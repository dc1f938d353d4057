package projections

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/agentcom/agentcom/domain"
)

// agentEntry is one agent with the sequence of its newest own event (the
// expected last sequence of its subject).
type agentEntry struct {
	agent *domain.Agent
	seq   uint64
}

// Agents is the agent read model: each agent's state machine and
// presence, built from agent events and from the events of the tasks the
// agents hold. Agent pointers it returns must not be changed.
type Agents struct {
	// mu comes after Views.mu and Tasks.mu (lock order: views.go).
	mu       sync.RWMutex
	agents   map[string]*agentEntry
	holders  map[string]string // task id -> agent holding it
	lastSeq  uint64
	observer func(Transition)
}

// Transition is one change of an agent's state, as Observe reports it.
type Transition struct {
	AgentID   string
	From, To  domain.AgentState
	Since, At time.Time // when it entered From, and when it left
	TaskID    string
	RequestID string
}

// Observe sets a function told of every state change applied from now on
// (not of those already applied). It runs under the projection's lock and
// must not block or call back into the projection.
func (p *Agents) Observe(fn func(Transition)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observer = fn
}

// NewAgents returns an empty agent projection.
func NewAgents() *Agents {
	return &Agents{agents: map[string]*agentEntry{}, holders: map[string]string{}}
}

// Apply applies events in stream order (see Tasks.Apply for the rules).
func (p *Agents) Apply(envs ...domain.Envelope) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, env := range envs {
		if env.Seq <= p.lastSeq {
			return fmt.Errorf("apply event %s: sequence %d is not after %d", env.ID, env.Seq, p.lastSeq)
		}
		p.lastSeq = env.Seq
		if err := p.apply(env); err != nil {
			return err
		}
	}
	return nil
}

func (p *Agents) apply(env domain.Envelope) error {
	if env.IsAgent() {
		e := p.agents[env.Aggregate]
		var cur *domain.Agent
		if e != nil {
			cur = e.agent
		}
		next := domain.EvolveAgent(cur, env)
		if next == nil {
			return fmt.Errorf("apply event %s (%s, seq %d): agent %s is unknown", env.ID, env.Type, env.Seq, env.Aggregate)
		}
		p.set(env.Aggregate, cur, next, env.Seq, "")
		p.observe(cur, next, env)
		return nil
	}
	id := agentOf(env)
	if id == "" {
		id = p.holders[env.Aggregate]
	}
	if e := p.agents[id]; e != nil {
		next := domain.EvolveAgent(e.agent, env)
		p.set(id, e.agent, next, e.seq, env.Aggregate)
		p.observe(e.agent, next, env)
	}
	return nil
}

// observe reports a state change to the observer, if any.
func (p *Agents) observe(prev, next *domain.Agent, env domain.Envelope) {
	if p.observer == nil || next == nil {
		return
	}
	from, since := domain.StateOffline, env.Time
	if prev != nil {
		from, since = prev.State, prev.LastStateChange
	}
	if from == next.State {
		return
	}
	task := next.CurrentTask
	if !env.IsAgent() {
		task = env.Aggregate // the task whose event moved it
	} else if task == "" && prev != nil {
		task = prev.CurrentTask
	}
	p.observer(Transition{AgentID: next.ID, From: from, To: next.State, Since: since, At: env.Time,
		TaskID: task, RequestID: env.RequestID})
}

// set stores an agent's new state and keeps the task holders in step. A
// task's event (task names it) changes only whether that task is held;
// an agent's own event may change them all.
func (p *Agents) set(id string, prev, next *domain.Agent, seq uint64, task string) {
	p.agents[id] = &agentEntry{agent: next, seq: seq}
	if task != "" {
		if _, held := next.Holding(task); held {
			p.holders[task] = id
		} else if p.holders[task] == id {
			delete(p.holders, task)
		}
		return
	}
	if prev != nil {
		for _, h := range prev.Tasks {
			if p.holders[h.ID] == id {
				delete(p.holders, h.ID)
			}
		}
	}
	for _, h := range next.Tasks {
		p.holders[h.ID] = id
	}
}

// agentOf returns the agent a task event names, if it names one.
func agentOf(env domain.Envelope) string {
	switch e := env.Data.(type) {
	case domain.TaskAssigned:
		return e.AgentID
	case domain.TaskAccepted:
		return e.AgentID
	case domain.TaskCompleted:
		return e.AgentID
	case domain.TaskFailed:
		return e.AgentID
	case domain.TaskReclaimed:
		return e.AgentID
	}
	return ""
}

// Get returns an agent and the sequence of its newest own event.
func (p *Agents) Get(id string) (*domain.Agent, uint64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.agents[id]
	if !ok {
		return nil, 0, false
	}
	return e.agent, e.seq, true
}

// LastSeq is the sequence of the newest applied event.
func (p *Agents) LastSeq() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.lastSeq
}

// List returns every agent, by id.
func (p *Agents) List() []*domain.Agent {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*domain.Agent, 0, len(p.agents))
	for _, e := range p.agents {
		out = append(out, e.agent)
	}
	slices.SortFunc(out, func(a, b *domain.Agent) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Available returns the agents that may take work (idle, not flagged),
// longest idle first, so that work spreads across them.
func (p *Agents) Available() []*domain.Agent {
	all := p.List()
	out := all[:0]
	for _, a := range all {
		if a.Available() {
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b *domain.Agent) int { return a.LastStateChange.Compare(b.LastStateChange) })
	return out
}
