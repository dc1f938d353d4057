package projections

import (
	"maps"
	"slices"

	"github.com/agentcom/agentcom/domain"
)

// workflowIndex is what the task projection knows of the ties between
// tasks: which waiting tasks wait on each dependency, and every task of
// each goal with its status (finished ones too, after they leave memory,
// so a goal's counts cover all its tasks).
type workflowIndex struct {
	waitingOn map[string]map[string]struct{} // dependency id -> waiting tasks
	goals     map[string]map[string]domain.Status
}

func newWorkflowIndex() workflowIndex {
	return workflowIndex{waitingOn: map[string]map[string]struct{}{}, goals: map[string]map[string]domain.Status{}}
}

// link files next under its goal, and under its dependencies while it
// waits. Lock held.
func (w *workflowIndex) link(prev, next *domain.Task) {
	if g := next.Goal(); g != "" {
		if w.goals[g] == nil {
			w.goals[g] = map[string]domain.Status{}
		}
		w.goals[g][next.ID] = next.Status
	}
	was := prev != nil && prev.Status == domain.StatusWaiting
	is := next.Status == domain.StatusWaiting
	switch {
	case is && !was:
		for _, d := range next.Deps() {
			if w.waitingOn[d] == nil {
				w.waitingOn[d] = map[string]struct{}{}
			}
			w.waitingOn[d][next.ID] = struct{}{}
		}
	case was && !is:
		for _, d := range next.Deps() {
			if delete(w.waitingOn[d], next.ID); len(w.waitingOn[d]) == 0 {
				delete(w.waitingOn, d)
			}
		}
	}
}

// Dependents are the waiting tasks that wait on task id, sorted.
func (p *Tasks) Dependents(id string) []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return slices.Sorted(maps.Keys(p.flow.waitingOn[id]))
}

// GoalTasks is every task of a goal with its status (nil: no such goal
// among the tasks).
func (p *Tasks) GoalTasks(goal string) map[string]domain.Status {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if g, ok := p.flow.goals[goal]; ok {
		return maps.Clone(g)
	}
	return nil
}

// GoalCounts are a goal's tasks counted by status.
func (p *Tasks) GoalCounts(goal string) map[domain.Status]int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	counts := map[domain.Status]int{}
	for _, st := range p.flow.goals[goal] {
		counts[st]++
	}
	return counts
}

// GoalIDs lists the goals that have tasks, sorted.
func (p *Tasks) GoalIDs() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return slices.Sorted(maps.Keys(p.flow.goals))
}

// restoreFlow rebuilds the index after a snapshot: the goals as the
// snapshot kept them, the waiting tasks from memory. Lock held.
func (p *Tasks) restoreFlow(goals map[string]map[string]domain.Status) {
	p.flow = newWorkflowIndex()
	for g, ts := range goals {
		p.flow.goals[g] = maps.Clone(ts)
	}
	for _, e := range p.tasks {
		p.flow.link(nil, e.task)
	}
}

// goalsOf is the goal index for a snapshot. Lock held.
func (p *Tasks) goalsOf() map[string]map[string]domain.Status {
	if len(p.flow.goals) == 0 {
		return nil
	}
	out := make(map[string]map[string]domain.Status, len(p.flow.goals))
	for g, ts := range p.flow.goals {
		out[g] = maps.Clone(ts)
	}
	return out
}
