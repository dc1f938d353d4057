package agents

import (
	"context"
	"fmt"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol/ops"
)

// Reset is the original's admin reset, with its bug fixed (it left the
// tasks assigned): every task the agent holds is taken back (a reclaim,
// counted, and the agent told to stop) and its unresponsive flag is
// cleared, so that it gets work again.
func (c *Coordinator) Reset(ctx context.Context, agentID string) (ops.AgentReset, error) {
	if _, _, ok := c.views.Agents.Get(agentID); !ok {
		return ops.AgentReset{}, fmt.Errorf("reset agent: %w", &domain.AgentNotFoundError{AgentID: agentID})
	}
	out := ops.AgentReset{AgentID: agentID, Reclaimed: []string{}}
	for _, st := range []domain.Status{domain.StatusAssigned, domain.StatusWorking} {
		for _, t := range c.views.Tasks.List(projections.Filter{Status: st, AssignedTo: agentID}) {
			c.reclaim(ctx, t, ReasonReset)
			out.Reclaimed = append(out.Reclaimed, t.ID)
		}
	}
	if a, _, _ := c.views.Agents.Get(agentID); a != nil && a.Unresponsive {
		_, err := c.svc.ExecuteAgent(ctx, domain.UnflagAgent{ID: agentID})
		out.Unflagged = err == nil
	}
	c.log.Ctx(ctx).Notice().Str("agent_id", agentID).Strs("reclaimed", out.Reclaimed).Bool("unflagged", out.Unflagged).
		Str("request_id", logsink.RequestID(ctx)).Msg("agent reset")
	return out, nil
}
