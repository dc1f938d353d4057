package writer

import (
	"context"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
)

// command is what the writer runs: it names the aggregates it reads and
// writes (the first is the one it writes) and decides its events against
// the projections. The two kinds are a task's and an agent's command;
// Execute and ExecuteAgent wrap them, so no other kind can reach the
// decider.
type command interface {
	keys(s *Service) keys
	// decide decides the command; retry is set when it is decided again
	// after a conflict.
	decide(s *Service, ctx context.Context, now time.Time, retry bool) (decided, error)
}

// state is an aggregate's state after a command: a task or an agent.
type state struct {
	task  *domain.Task
	agent *domain.Agent
}

// taskCommand is a command on one task.
type taskCommand struct{ domain.Command }

// keys: an assignment also reads its agent, and a command on a held task
// changes the agent holding it (its state follows the task's events).
// The decider asks when the task is free, so the holder cannot change
// before the command is decided. Both share the agent's key with other
// tasks' commands (an agent with several slots has many at once); only
// the agent's own commands take it alone. Assignments in flight reserve
// their slots (Service.reserved), so that sharing cannot overfill one.
func (c taskCommand) keys(s *Service) keys {
	if as, ok := c.Command.(domain.AssignTask); ok {
		return keysOf(key{id: as.ID}, key{agent: true, shared: true, id: as.AgentID})
	}
	if t, _, ok := s.views.Tasks.Peek(c.TaskID()); ok && t.AssignedTo != "" { // a held task is in memory
		return keysOf(key{id: c.TaskID()}, key{agent: true, shared: true, id: t.AssignedTo})
	}
	return keysOf(key{id: c.TaskID()})
}

func (c taskCommand) decide(s *Service, ctx context.Context, now time.Time, retry bool) (decided, error) {
	id := c.TaskID()
	t, seq := c.current(s, retry)
	cmd, agent := c.Command, (*domain.Agent)(nil)
	if as, ok := cmd.(domain.AssignTask); ok {
		agent, _, _ = s.views.Agents.Get(as.AgentID)
		as.Accepted = agent != nil && agent.ImpliedAccept
		cmd = as
	}
	events, err := cmd.Decide(t, now)
	if err != nil {
		return decided{}, err
	}
	if as, ok := cmd.(domain.AssignTask); ok {
		if err := domain.CanAssign(agent, as.AgentID, t, s.unseen(agent, as.AgentID)); err != nil {
			return decided{}, err
		}
		s.reserve(as.AgentID, as.ID) // until its group lands (release)
	}
	envs := Envelopes(ctx, id, now, events)
	for _, env := range envs {
		t = domain.Evolve(t, env)
	}
	_, rollup := cmd.(domain.CompactTask)
	return decided{after: state{task: t},
		append: broker.Append{Subject: broker.TaskEvents(id), ExpectedSeq: seq, Events: envs, Rollup: rollup}}, nil
}

// current reads the task the command decides on. A submit of a new id
// reads only memory: that it is new is checked by the store (expected
// sequence 0), and only after a conflict does it read the stream (the id
// may be of a task that finished and left memory).
func (c taskCommand) current(s *Service, retry bool) (*domain.Task, uint64) {
	if _, submit := c.Command.(domain.SubmitTask); submit && !retry {
		t, seq, _ := s.views.Tasks.Peek(c.TaskID())
		return t, seq
	}
	t, seq, _ := s.views.Tasks.Get(c.TaskID())
	return t, seq
}

// agentCommand is a command on one agent.
type agentCommand struct{ domain.AgentCommand }

func (c agentCommand) keys(*Service) keys { return keysOf(key{agent: true, id: c.AgentID()}) }

// key names one aggregate: a task's, or an agent's. A shared key may be
// in flight with other shared ones; any other is in flight alone.
type key struct {
	agent  bool
	shared bool
	id     string
}

// lock is the aggregate a key names, without its mode: the inflight map's key.
func (k key) lock() key { return key{agent: k.agent, id: k.id} }

func (k key) String() string {
	if k.agent {
		return "agent:" + k.id
	}
	return "task:" + k.id
}

// keys are the one or two aggregates of a command, the written one first,
// held without a slice of their own.
type keys struct {
	n   int
	all [2]key
}

func keysOf(ks ...key) keys {
	var out keys
	out.n = copy(out.all[:], ks)
	return out
}

// list is the keys as a slice of the value's own array.
func (k *keys) list() []key { return k.all[:k.n] }

func (c agentCommand) decide(s *Service, ctx context.Context, now time.Time, _ bool) (decided, error) {
	id := c.AgentID()
	a, seq, _ := s.views.Agents.Get(id)
	events, err := c.DecideAgent(a, now)
	if err != nil {
		return decided{}, err
	}
	envs := Envelopes(ctx, id, now, events)
	for _, env := range envs {
		a = domain.EvolveAgent(a, env)
	}
	return decided{after: state{agent: a},
		append: broker.Append{Subject: broker.AgentEvents(id), ExpectedSeq: seq, Events: envs}}, nil
}
