package agents

import (
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol"
)

// dependencyResults are t's dependencies as they ended, results included
// while they fit in domain.MaxDependencyResults together; a larger one is
// marked omitted (the agent reads it with task.get).
func (c *Coordinator) dependencyResults(t *domain.Task) []protocol.DependencyResult {
	deps := t.Deps()
	if len(deps) == 0 {
		return nil
	}
	out := make([]protocol.DependencyResult, len(deps))
	room := domain.MaxDependencyResults
	for i, id := range deps {
		out[i] = protocol.DependencyResult{TaskID: id}
		d, _, ok := c.views.Tasks.Get(id)
		if !ok {
			continue
		}
		out[i].Status = string(d.Status)
		if n := len(d.Result); n > room {
			out[i].ResultOmitted = true
		} else if n > 0 {
			out[i].Result, room = d.Result, room-n
		}
	}
	return out
}
