package api

import (
	"context"
	"net/http"
	"time"

	"github.com/agentcom/agentcom/projections"
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
	cfg := a.settings.Current().Agents
	out := ops.Usage{Days: a.tasks.Usage(q.AgentID, q.Since, q.Until), ByAgent: map[string]ops.UsageTotal{},
		DailyBudgetUSD: cfg.DailyBudgetUSD, Budgets: map[string]float64{}, OverBudget: []string{}}
	for id, b := range cfg.Budgets {
		if q.AgentID == "" || q.AgentID == id {
			out.Budgets[id] = b
		}
	}
	today := a.now().UTC().Format(time.DateOnly)
	for _, r := range out.Days {
		out.ByAgent[r.AgentID] = addRow(out.ByAgent[r.AgentID], r)
		out.Total = addRow(out.Total, r)
		if b := cfg.BudgetOf(r.AgentID); r.Day == today && b > 0 && r.CostUSD >= b {
			out.OverBudget = append(out.OverBudget, r.AgentID)
		}
	}
	return Reply{http.StatusOK, out}
}

// addRow is t with a usage row added.
func addRow(t ops.UsageTotal, r projections.UsageRow) ops.UsageTotal {
	return ops.UsageTotal{Tasks: t.Tasks + r.Tasks, InputTokens: t.InputTokens + r.InputTokens,
		OutputTokens: t.OutputTokens + r.OutputTokens, CostUSD: t.CostUSD + r.CostUSD}
}
