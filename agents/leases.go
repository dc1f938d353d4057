package agents

import (
	"context"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/writer"
)

// Reclaim reasons.
const (
	ReasonAcceptanceTimeout = "acceptance_timeout"
	ReasonStuck             = "stuck"
	ReasonOverdue           = "overdue"
	ReasonAgentOffline      = "agent_offline"
	ReasonAgentLostTask     = "agent_lost_task"
	ReasonReset             = "reset" // an operator's agent reset
)

func (c *Coordinator) sweepLoop() {
	tick := time.NewTicker(c.conf().SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-tick.C:
			c.sweep()
		}
	}
}

// sweep takes back what agents no longer hold: an assignment not accepted
// in time (and the agent is flagged), a working task without a progress
// heartbeat for the stuck threshold, a task past its complete_by, the task
// of an agent offline past the reconnect grace; and it evicts agents
// silent past the reap period. Deadlines never start before the hub did,
// so a restart gives every agent its full time to report.
func (c *Coordinator) sweep() {
	ctx, cancel := context.WithTimeout(logsink.WithRequestID(context.Background(), logsink.NewRequestID()), writer.AppendTimeout)
	defer cancel()
	now := c.now()
	c.sweepLanes(now)
	for _, t := range c.views.Tasks.List(projections.Filter{Status: domain.StatusAssigned}) {
		if c.since(*t.AssignedAt, now) > c.conf().AcceptanceTimeout {
			// Flag first, so the scheduler cannot hand the task straight back.
			_, err := c.svc.ExecuteAgent(ctx, domain.FlagAgent{ID: t.AssignedTo, Reason: ReasonAcceptanceTimeout, TaskID: t.ID})
			c.logResult(ctx, err, t.AssignedTo, "agent flagged unresponsive")
			c.reclaim(ctx, t, ReasonAcceptanceTimeout)
		}
	}
	for _, t := range c.views.Tasks.List(projections.Filter{Status: domain.StatusWorking}) {
		if c.since(t.UpdatedAt, now) > c.conf().StuckThreshold {
			c.reclaim(ctx, t, ReasonStuck)
		}
	}
	c.expire(ctx, now)
	c.reconcile(ctx)
	c.sweepAgents(ctx, now)
}

func (c *Coordinator) sweepAgents(ctx context.Context, now time.Time) {
	var gone []string
	defer func() { c.sweepReservations(ctx, gone) }()
	for _, a := range c.views.Agents.List() {
		if !a.Online() {
			if c.since(a.LastStateChange, now) > c.conf().ReconnectGrace {
				gone = append(gone, a.ID)
				for _, h := range a.Tasks {
					// Only what is still this agent's, under that generation.
					if t, _, ok := c.views.Tasks.Get(h.ID); ok && t.AssignedTo == a.ID && t.Generation == h.Generation {
						c.reclaim(ctx, t, ReasonAgentOffline)
					}
				}
			}
			continue
		}
		seen, ok := c.presence.lastSeen(a.ID)
		if stale := now.Sub(seen); !ok || stale > c.conf().ReapAfter {
			_, err := c.svc.ExecuteAgent(ctx, domain.EvictAgent{ID: a.ID, StaleMS: stale.Milliseconds()})
			c.logResult(ctx, err, a.ID, "agent evicted")
			c.srv.DisconnectAgent(a.ID, false)
		}
	}
}

// since is the time from t (or from the hub's start, if later) to now.
func (c *Coordinator) since(t, now time.Time) time.Duration {
	if t.Before(c.started) {
		t = c.started
	}
	return now.Sub(t)
}

func overdue(t *domain.Task, now time.Time) bool {
	return t.CompleteBy != nil && now.After(*t.CompleteBy)
}

// reclaim takes a task back and tells its agent to stop. It carries the
// task's own request id, like everything else that happens to the task.
func (c *Coordinator) reclaim(ctx context.Context, t *domain.Task, reason string) {
	ctx = logsink.WithRequestID(ctx, requestIDOf(t))
	_, err := c.svc.Execute(ctx, domain.ReclaimTask{ID: t.ID, Reason: reason})
	if err != nil {
		c.log.Ctx(ctx).Debug().Err(err).Str("task_id", t.ID).Msg("reclaim refused")
		return
	}
	c.log.Ctx(ctx).Warning().Str("task_id", t.ID).Str("agent_id", t.AssignedTo).Str("reason", reason).Msg("task reclaimed")
	c.push(t.AssignedTo, broker.PushAbort, protocol.Abort{TaskID: t.ID, Generation: t.Generation, Reason: reason})
}

// expire dead-letters every unfinished task past its complete_by, telling
// its agent, if any, to stop.
func (c *Coordinator) expire(ctx context.Context, now time.Time) {
	var open []*domain.Task // only these can expire: no walk over every finished task
	for _, s := range domain.Statuses {
		if !s.Final() && s != domain.StatusDeadLetter {
			open = append(open, c.views.Tasks.List(projections.Filter{Status: s})...)
		}
	}
	for _, t := range open {
		if !overdue(t, now) {
			continue
		}
		ctx := logsink.WithRequestID(ctx, requestIDOf(t))
		after, err := c.svc.Execute(ctx, domain.ExpireTask{ID: t.ID})
		if err != nil {
			continue
		}
		line := c.log.Ctx(ctx).Warning().Str("task_id", t.ID)
		if t.AssignedTo != "" {
			line = line.Str("agent_id", t.AssignedTo)
		}
		line.Str("status", string(after.Status)).Msg("task overdue")
		if t.Status.Active() {
			c.push(t.AssignedTo, broker.PushAbort, protocol.Abort{TaskID: t.ID, Generation: t.Generation, Reason: ReasonOverdue})
		}
	}
}
