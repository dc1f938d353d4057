package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/telemetry"
)

// schedulerTick is the safety net: a pass runs at least this often even
// when no event asked for one.
const schedulerTick = time.Second

// declineCooldown keeps work away from an agent that just declined as busy.
const declineCooldown = 5 * time.Second

// scheduler matches queued tasks to available agents. A pass walks the
// queue in order (priority, then age) and gives each task to the capable
// agent that has been idle longest, so work spreads over the agents and
// every task is considered on every pass. Matches in flight are reserved
// until their assignment is decided, so no agent or task is promised
// twice.
type scheduler struct {
	c    *Coordinator
	wake chan struct{}
	// paused stops new matches; tests that assign by hand set it.
	paused atomic.Bool

	mu       sync.Mutex
	agents   map[string]bool      // agents with an assignment in flight
	tasks    map[string]bool      // tasks with an assignment in flight
	cooldown map[string]time.Time // agents that declined, until when
	held     map[string]int       // agents whose hello is being settled
	settled  *sync.Cond           // an assignment in flight ended (on mu)
}

func newScheduler(c *Coordinator) *scheduler {
	s := &scheduler{c: c, wake: make(chan struct{}, 1), agents: map[string]bool{}, tasks: map[string]bool{},
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
		}
		for _, m := range s.pass(trigger) {
			wg.Go(func() { s.assign(m) })
		}
	}
}

// match is a task for an agent, with the task's request id.
type match struct{ task, agent, requestID string }

// pass finds matches and reserves them. It walks the queue only as far as
// there are agents to give work to: a pass costs nothing with no agent
// free, however long the queue.
func (s *scheduler) pass(trigger string) []match {
	if s.paused.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.c.now()
	var pool []*domain.Agent
	for _, a := range s.c.views.Agents.Available() {
		if !s.agents[a.ID] && s.held[a.ID] == 0 && now.After(s.cooldown[a.ID]) {
			pool = append(pool, a)
		}
	}
	depth := s.c.views.Tasks.QueueDepth()
	if len(pool) == 0 || depth == 0 {
		return nil
	}
	idle := len(pool)
	var out []match
	s.c.views.Tasks.EachQueued(func(t *domain.Task) bool {
		if s.tasks[t.ID] || overdue(t, now) {
			return true
		}
		for i, a := range pool {
			if a.CanRun(t) {
				out = append(out, match{task: t.ID, agent: a.ID, requestID: requestIDOf(t)})
				s.tasks[t.ID], s.agents[a.ID] = true, true
				pool = append(pool[:i], pool[i+1:]...)
				break
			}
		}
		return len(pool) > 0
	})
	s.c.tel.Later(func(w telemetry.Writer) { // written off the scheduler's lock
		w.Event(now, "scheduler.attempt").Num("idle_agents", float64(idle)).Num("queued_tasks", float64(depth)).
			Str("trigger", trigger).Send()
		for _, m := range out {
			w.Event(now, "scheduler.match").Str("task_id", m.task).Str("agent_id", m.agent).Send()
		}
	})
	return out
}

// assign records one match and pushes the assignment to its agent. The
// match stays reserved until the push is out, so a hello waiting for it
// (hold) sends any abort after the assignment.
func (s *scheduler) assign(m match) {
	taskID, agentID := m.task, m.agent
	ctx, cancel := context.WithTimeout(logsink.WithRequestID(context.Background(), m.requestID), appendTimeout)
	defer cancel()
	t, err := s.c.svc.Execute(ctx, domain.AssignTask{ID: taskID, AgentID: agentID})
	if err == nil {
		s.c.log.Ctx(ctx).Info().Str("task_id", taskID).Str("agent_id", agentID).Uint64("generation", t.Generation).Msg("task assigned")
		s.c.push(agentID, broker.PushTask, assignmentOf(t))
	}
	s.mu.Lock()
	delete(s.tasks, taskID)
	delete(s.agents, agentID)
	s.settled.Broadcast()
	s.mu.Unlock()
	if err != nil {
		s.c.log.Ctx(ctx).Debug().Err(err).Str("task_id", taskID).Str("agent_id", agentID).Msg("assignment refused")
		s.trigger()
	}
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
	for s.agents[agentID] {
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
