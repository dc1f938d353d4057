package api

import (
	"context"
	"net/http"
	"time"

	"github.com/agentcom/agentcom/protocol/ops"
)

// usageCall answers GET /api/usage; to an agent, its own rows only.
func (a *API) usageCall(ctx context.Context, c call) Reply {
	var q ops.UsageQuery
	if err := unmarshalOptional(c.body, &q); err != nil {
		return a.errorReply(ctx, badBody("the body must be a JSON object of agent_id, since, until strings"))
	}
	for field, day := range map[string]string{"since": q.Since, "until": q.Until} {
		if _, err := time.Parse(time.DateOnly, day); day != "" && err != nil {
			return a.errorReply(ctx, fieldErr(field, "invalid", field+" must be a UTC day such as 2026-12-03"))
		}
	}
	if agent, ok := c.agent(); ok {
		q.AgentID = agent
	}
	out := ops.Usage{Days: a.tasks.Usage(q.AgentID, q.Since, q.Until), ByAgent: map[string]ops.UsageTotal{},
		DailyBudgetUSD: a.dailyBudget, OverBudget: []string{}}
	today := a.now().UTC().Format(time.DateOnly)
	for _, r := range out.Days {
		t := out.ByAgent[r.AgentID]
		t.Tasks, t.InputTokens, t.OutputTokens, t.CostUSD = t.Tasks+r.Tasks, t.InputTokens+r.InputTokens,
			t.OutputTokens+r.OutputTokens, t.CostUSD+r.CostUSD
		out.ByAgent[r.AgentID] = t
		out.Total.Tasks, out.Total.InputTokens = out.Total.Tasks+r.Tasks, out.Total.InputTokens+r.InputTokens
		out.Total.OutputTokens, out.Total.CostUSD = out.Total.OutputTokens+r.OutputTokens, out.Total.CostUSD+r.CostUSD
		if r.Day == today && a.dailyBudget > 0 && r.CostUSD >= a.dailyBudget {
			out.OverBudget = append(out.OverBudget, r.AgentID)
		}
	}
	return Reply{http.StatusOK, out}
}
