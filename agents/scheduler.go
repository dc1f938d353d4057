package agents

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/telemetry"
	"github.com/agentcom/agentcom/writer"
)

// schedulerTick is the safety net: a pass runs at least this often even
// when no event asked for one.
const schedulerTick = time.Second

// declineCooldown keeps work away from an agent that just declined as busy.
const declineCooldown = 5 * time.Second

// scheduler matches queued tasks to the free slots of available agents.
// A pass walks the queue in order (priority, then age) and gives each
// task to the first capable agent in turn, starting with the one idle
// longest; an agent given a task goes to the back of the turn, so work
// spreads over the agents and every task is considered on every pass.
// Matches in flight are reserved until their assignment is decided, so no
// task is promised twice and no agent more than its free slots.
type scheduler struct {
	c    *Coordinator
	wake chan struct{}
	// paused stops new matches; tests that assign by hand set it.
	paused atomic.Bool

	// mu comes before the projections' locks (lock order:
	// projections/views.go): a pass reads them while holding it.
	mu       sync.Mutex
	agents   map[string]int       // agents' assignments in flight
	tasks    map[string]bool      // tasks with an assignment in flight
	cooldown map[string]time.Time // agents that declined, until when
	held     map[string]int       // agents whose hello is being settled
	settled  *sync.Cond           // an assignment in flight ended (on mu)
	last     attempt              // what the last scheduler.attempt reported
}

// attempt is what a pass saw. A pass that sees what the last one saw, and
// matches nothing, is not worth a scheduler.attempt event: a task nobody
// can run would otherwise report one a second forever.
type attempt struct {
	seq         uint64
	idle, depth int
}

func newScheduler(c *Coordinator) *scheduler {
	s := &scheduler{c: c, wake: make(chan struct{}, 1), agents: map[string]int{}, tasks: map[string]bool{},
		cooldown: map[string]time.Time{}, held: map[string]int{}}
	s.settled = sync.NewCond(&s.mu)
	return s
}

// trigger asks for a pass; triggers while one is pending coalesce.
func (s *scheduler) trigger() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *scheduler) run(quit <-chan struct{}) {
	tick := time.NewTicker(schedulerTick)
	defer tick.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		trigger := "event"
		select {
		case <-quit:
			return
		case <-s.wake:
		case <-tick.C:
			trigger = "tick"
		case <-due.C:
			trigger = "due"
		}
		matches, next := s.pass(trigger)
		for _, ms := range groupBy(matches, func(m match) string { return m.agent }) {
			if ms[0].batch {
				wg.Go(func() { s.assignBatch(ms) })
				continue
			}
			for _, m := range ms {
				wg.Go(func() { s.assign(m) })
			}
		}
		if !next.IsZero() && next.Sub(s.c.now()) < schedulerTick {
			due.Reset(max(next.Sub(s.c.now()), time.Millisecond)) // wake when a waiting task comes due
		}
	}
}

// match is a task for an agent, with the task's request id; batch: the
// agent takes its assignments in one push.
type match struct {
	task, agent, requestID string
	batch                  bool
}

// groupBy groups items by key, each group in the order given, the groups
// in the order their keys first appear.
func groupBy[T any](items []T, key func(T) string) [][]T {
	at := map[string]int{}
	var out [][]T
	for _, it := range items {
		g, ok := at[key(it)]
		if !ok {
			g, at[key(it)] = len(out), len(out)
			out = append(out, nil)
		}
		out[g] = append(out[g], it)
	}
	return out
}

// pass finds matches and reserves them. It walks the queue only as far as
// there are agents to give work to: a pass costs nothing with no agent
// free, however long the queue. Tasks waiting out a backoff or their
// run_at are passed over; next is when the first of those it saw comes
// due (zero: none).
func (s *scheduler) pass(trigger string) (out []match, next time.Time) {
	if s.paused.Load() {
		return nil, time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.c.now()
	pool := s.pool(now)
	seq, depth := s.c.views.Tasks.LastSeq(), s.c.views.Tasks.QueueDepth()
	if len(pool) == 0 || depth == 0 {
		return nil, time.Time{}
	}
	seen := attempt{seq: seq, idle: len(pool), depth: depth}
	s.c.views.Tasks.EachQueued(func(t *domain.Task) bool {
		if !t.Due(now) {
			next = earliest(next, *t.RunAfter)
			return true
		}
		if s.tasks[t.ID] || overdue(t, now) {
			return true
		}
		for i, f := range pool {
			if f.agent.CanRun(t) {
				out = append(out, match{task: t.ID, agent: f.agent.ID, requestID: requestIDOf(t), batch: f.agent.Batch})
				s.tasks[t.ID] = true
				s.agents[f.agent.ID]++
				pool = append(pool[:i], pool[i+1:]...)
				if f.free--; f.free > 0 {
					pool = append(pool, f) // to the back of the turn
				}
				break
			}
		}
		return len(pool) > 0
	})
	if len(out) == 0 && seen == s.last {
		return nil, next
	}
	s.last = seen
	s.report(now, trigger, seen, out)
	return out, next
}

// freeAgent is an agent in a pass with the slots it has left.
type freeAgent struct {
	agent *domain.Agent
	free  int
}

// pool is the agents a pass may give work to, longest idle first, with
// their free slots less the assignments in flight to them; not an agent
// whose hello is being settled, that declined lately, or that spent its
// daily budget (agents.daily_budget_usd).
func (s *scheduler) pool(now time.Time) []freeAgent {
	var pool []freeAgent
	for _, a := range s.c.views.Agents.Available() {
		free := a.Free() - s.agents[a.ID]
		if free > 0 && s.held[a.ID] == 0 && now.After(s.cooldown[a.ID]) && !s.c.OverBudget(a.ID, now) {
			pool = append(pool, freeAgent{agent: a, free: free})
		}
	}
	return pool
}

// report writes the pass's telemetry, off the scheduler's lock.
func (s *scheduler) report(now time.Time, trigger string, seen attempt, out []match) {
	s.c.tel.Later(func(w telemetry.Writer) {
		w.Event(now, "scheduler.attempt").Num("idle_agents", float64(seen.idle)).Num("queued_tasks", float64(seen.depth)).
			Str("trigger", trigger).Send()
		for _, m := range out {
			w.Event(now, "scheduler.match").Str("task_id", m.task).Str("agent_id", m.agent).Send()
		}
	})
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// assign records one match and pushes the assignment to its agent. The
// match stays reserved until the push is out, so a hello waiting for it
// (hold) sends any abort after the assignment.
func (s *scheduler) assign(m match) {
	if a, ok := s.record(m); ok {
		s.c.push(m.agent, broker.PushTask, a)
	}
	s.done(m)
}

// assignBatch records an agent's matches side by side (they share the
// writer's groups) and pushes what was assigned in one message.
func (s *scheduler) assignBatch(ms []match) {
	out := make([]*protocol.Assignment, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			if a, ok := s.record(m); ok {
				out[i] = &a
			}
		})
	}
	wg.Wait()
	push := protocol.Assignments{Tasks: make([]protocol.Assignment, 0, len(ms))}
	for _, a := range out {
		if a != nil {
			push.Tasks = append(push.Tasks, *a)
		}
	}
	if len(push.Tasks) > 0 {
		s.c.push(ms[0].agent, broker.PushTasks, push)
	}
	for _, m := range ms {
		s.done(m)
	}
}

// record stores one assignment and returns what to push.
func (s *scheduler) record(m match) (protocol.Assignment, bool) {
	ctx, cancel := context.WithTimeout(logsink.WithRequestID(context.Background(), m.requestID), writer.AppendTimeout)
	defer cancel()
	t, err := s.c.svc.Execute(ctx, domain.AssignTask{ID: m.task, AgentID: m.agent})
	if err != nil {
		s.c.log.Ctx(ctx).Debug().Err(err).Str("task_id", m.task).Str("agent_id", m.agent).Msg("assignment refused")
		return protocol.Assignment{}, false
	}
	s.c.log.Ctx(ctx).Info().Str("task_id", m.task).Str("agent_id", m.agent).Uint64("generation", t.Generation).Msg("task assigned")
	return s.c.assignmentOf(t), true
}

// done ends a match's reservation and asks for a pass: a refused match
// left its task queued, and a pass that ran while the reservation stood
// saw one slot fewer than the agent has (triggers coalesce).
func (s *scheduler) done(m match) {
	s.mu.Lock()
	delete(s.tasks, m.task)
	if s.agents[m.agent]--; s.agents[m.agent] <= 0 {
		delete(s.agents, m.agent)
	}
	s.settled.Broadcast()
	s.mu.Unlock()
	s.trigger()
}

// declined keeps work away from a busy agent for a while.
func (s *scheduler) declined(agentID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cooldown[agentID] = s.c.now().Add(declineCooldown)
}

// hold keeps work away from an agent until release: a hello settles what
// the agent holds first. It waits for an assignment already in flight to
// the agent, so that the hello sees it.
func (s *scheduler) hold(agentID string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[agentID]++
	for s.agents[agentID] > 0 {
		s.settled.Wait()
	}
	return func() {
		s.mu.Lock()
		if s.held[agentID]--; s.held[agentID] == 0 {
			delete(s.held, agentID)
		}
		s.mu.Unlock()
		s.trigger()
	}
}
