package agents

import (
	"context"
	"sync"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// ReasonNoLongerHeld is the reason of an abort pushed for a task an agent
// said it holds, when the hub's state says it is no longer the agent's.
const ReasonNoLongerHeld = "no_longer_held"

// excuses remembers when each agent's stale busy decline was last let go
// without a cooldown.
type excuses struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// take reports whether agentID may have a decline excused at now: once
// per declineCooldown, so an agent that keeps declining cannot spin.
func (e *excuses) take(agentID string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil {
		e.last = map[string]time.Time{}
	}
	if last, ok := e.last[agentID]; ok && now.Sub(last) < declineCooldown {
		return false
	}
	e.last[agentID] = now
	return true
}

// declined runs before a decline applies (its wake-up must not hand the
// task straight back to a busy agent) and decides whether the agent is
// kept from work. A busy decline whose holdings the hub's own state says
// are no longer the agent's is stale: the agent is free, as the hub
// thinks. The hub then tells it to let those tasks go (the aborts go out
// before the task is handed back, on the same connection) and gives it
// work again at once. Any other decline keeps work away for the cooldown.
func (c *Coordinator) declined(ctx context.Context, agentID string, d protocol.Decline) {
	if d.Reason != protocol.DeclineBusy || len(d.Holding) == 0 || !c.stale(agentID, d.Holding) ||
		!c.excused.take(agentID, c.now()) {
		c.sched.declined(agentID)
		return
	}
	for _, h := range d.Holding {
		c.push(agentID, broker.PushAbort, protocol.Abort{TaskID: h.TaskID, Generation: h.Generation, Reason: ReasonNoLongerHeld})
	}
	c.log.Ctx(ctx).Info().Str("agent_id", agentID).Str("task_id", d.TaskID).Int("held", len(d.Holding)).
		Msg("busy decline is stale: the agent holds only tasks no longer its own; no cooldown")
}

// stale reports whether none of holding is, in the hub's state, a task
// the agent works on under that generation.
func (c *Coordinator) stale(agentID string, holding []protocol.Holding) bool {
	for _, h := range holding {
		t, _, ok := c.views.Tasks.Get(h.TaskID)
		if ok && t.Status.Active() && t.AssignedTo == agentID && t.Generation == h.Generation {
			return false
		}
	}
	return true
}
