package agents

import (
	"context"

	"github.com/agentcom/agentcom/domain"
)

// ReasonConnectionGone is why the reconcile marks an agent offline.
const ReasonConnectionGone = "connection_closed: connection gone (reconcile)"

// reconcile is the safety net under the disconnect advisories: an agent
// the hub believes online without a connection to the server (its
// advisory lost, or seen before its hello applied) goes offline. Agents
// carried over from before a restart are the reaper's: they have a full
// reap period to come back.
func (c *Coordinator) reconcile(ctx context.Context) {
	online := c.views.Agents.List() // before the server's list: a later hello is not missing
	live, err := c.srv.ConnectedAgentSet()
	if err != nil {
		c.log.Ctx(ctx).Warning().Err(err).Msg("reconcile skipped: connections not listed")
		return
	}
	for _, a := range online {
		if a.Online() && !live[a.ID] && !c.presence.carried(a.ID) {
			c.goneMissing(ctx, a)
		}
	}
}

// goneMissing marks offline an agent the server's list lacks, unless it
// has connected again since.
func (c *Coordinator) goneMissing(ctx context.Context, a *domain.Agent) {
	if c.srv.AgentConnections(a.ID) > 0 {
		return
	}
	c.lanes.Gone(a.ID)
	_, err := c.svc.ExecuteAgent(ctx, domain.DisconnectAgent{ID: a.ID, Session: a.Session, Reason: ReasonConnectionGone})
	c.logResult(ctx, err, a.ID, "agent disconnected (reconcile)")
}
