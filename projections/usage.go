package projections

import (
	"cmp"
	"slices"
	"time"

	"github.com/agentcom/agentcom/domain"
)

// dayLayout names a UTC day.
const dayLayout = "2006-01-02"

// UsageRow is what one agent's completions cost on one UTC day.
type UsageRow struct {
	Day          string  `json:"day"`
	AgentID      string  `json:"agent_id"`
	Tasks        int     `json:"tasks"` // completions that reported usage
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
}

type usageKey struct{ day, agent string }

// addUsage counts a completion's usage, on the day it was stored. Lock
// held.
func (p *Tasks) addUsage(env domain.Envelope) {
	c, ok := env.Data.(domain.TaskCompleted)
	if !ok || c.Usage == nil {
		return
	}
	k := usageKey{env.Time.UTC().Format(dayLayout), c.AgentID}
	r := p.usage[k]
	if r == nil {
		r = &UsageRow{Day: k.day, AgentID: k.agent}
		p.usage[k] = r
	}
	r.Tasks++
	r.InputTokens += c.Usage.InputTokens
	r.OutputTokens += c.Usage.OutputTokens
	r.CostUSD += c.Usage.CostUSD
}

// Usage returns the rows of the days from since to until (inclusive,
// "" for no bound), of one agent or of all (agentID ""), by day then
// agent.
func (p *Tasks) Usage(agentID, since, until string) []UsageRow {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := []UsageRow{}
	for k, r := range p.usage {
		if (agentID == "" || k.agent == agentID) && (since == "" || k.day >= since) && (until == "" || k.day <= until) {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b UsageRow) int { return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.AgentID, b.AgentID)) })
	return out
}

// SpentToday is what an agent's completions cost on now's UTC day.
func (p *Tasks) SpentToday(agentID string, now time.Time) float64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if r := p.usage[usageKey{now.UTC().Format(dayLayout), agentID}]; r != nil {
		return r.CostUSD
	}
	return 0
}

// usageRows is the usage for a snapshot. Lock held.
func (p *Tasks) usageRows() []UsageRow {
	out := make([]UsageRow, 0, len(p.usage))
	for _, r := range p.usage {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b UsageRow) int { return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.AgentID, b.AgentID)) })
	return out
}

// restoreUsage loads a snapshot's usage. Lock held.
func (p *Tasks) restoreUsage(rows []UsageRow) {
	for _, r := range rows {
		p.usage[usageKey{r.Day, r.AgentID}] = &r
	}
}
