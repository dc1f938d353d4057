package projections

import (
	"cmp"
	"slices"

	"github.com/agentcom/agentcom/domain"
)

// Filter selects tasks for List. Zero fields match everything.
type Filter struct {
	Status     domain.Status
	Priority   *domain.Priority
	AssignedTo string
}

func (f Filter) match(t *domain.Task) bool {
	return (f.Status == "" || t.Status == f.Status) &&
		(f.Priority == nil || t.Priority == *f.Priority) &&
		(f.AssignedTo == "" || t.AssignedTo == f.AssignedTo)
}

// List returns the matching tasks in queue order: priority, then age.
// Without a status filter, dead-lettered tasks are left out (they have
// their own list), as in the original.
func (p *Tasks) List(f Filter) []*domain.Task {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.list(f)
}

// list is List with the lock held.
func (p *Tasks) list(f Filter) []*domain.Task {
	if f.Status == domain.StatusQueued {
		return p.queued(f)
	}
	var out []*entry
	add := func(e *entry) {
		if f.match(e.task) && (f.Status != "" || e.task.Status != domain.StatusDeadLetter) {
			out = append(out, e)
		}
	}
	if f.Status != "" { // the status index holds just those: no walk over every task ever kept
		for id := range p.byStatus[f.Status] {
			add(p.tasks[id])
		}
	} else {
		for _, e := range p.tasks {
			add(e)
		}
	}
	slices.SortFunc(out, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.task.Priority, b.task.Priority), cmp.Compare(a.order, b.order))
	})
	tasks := make([]*domain.Task, len(out))
	for i, e := range out {
		tasks[i] = e.task
	}
	return tasks
}

// queued walks the lanes, already in order. Lock held.
func (p *Tasks) queued(f Filter) []*domain.Task {
	var out []*domain.Task
	for _, lane := range p.lanes {
		lane.Ascend(func(k queueKey) bool {
			if t := p.tasks[k.id].task; f.match(t) {
				out = append(out, t)
			}
			return true
		})
	}
	return out
}

// EachQueued calls fn with the queued tasks in the order they will be
// handed out, until fn returns false. fn runs under the read lock: it
// must not call back into the projection.
func (p *Tasks) EachQueued(fn func(*domain.Task) bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	more := true
	for _, lane := range p.lanes {
		lane.Ascend(func(k queueKey) bool {
			more = fn(p.tasks[k.id].task)
			return more
		})
		if !more {
			return
		}
	}
}

// QueueDepth is how many tasks are queued.
func (p *Tasks) QueueDepth() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.count(domain.StatusQueued)
}

// Queue returns the queued tasks in the order they will be handed out.
func (p *Tasks) Queue() []*domain.Task { return p.List(Filter{Status: domain.StatusQueued}) }

// DeadLetter returns the dead-lettered tasks in queue order (priority,
// then age), the order a retry would put them back in.
func (p *Tasks) DeadLetter() []*domain.Task { return p.List(Filter{Status: domain.StatusDeadLetter}) }

// Stats counts tasks.
type Stats struct {
	Total            int            `json:"total"`
	ByStatus         map[string]int `json:"by_status"`
	ByPriority       map[string]int `json:"by_priority"`
	QueuedByPriority map[string]int `json:"queued_by_priority"`
	Queued           int            `json:"queued"`
	DeadLetter       int            `json:"dead_letter"`
	LastSeq          uint64         `json:"last_seq"`
}

// Stats returns counts by status and by priority, and queue depth per lane.
func (p *Tasks) Stats() Stats {
	p.mu.RLock()
	defer p.mu.RUnlock()
	s := Stats{
		Total: len(p.tasks) + p.finished.evicted, ByStatus: map[string]int{}, ByPriority: map[string]int{},
		QueuedByPriority: map[string]int{}, LastSeq: p.lastSeq,
	}
	for _, st := range domain.Statuses {
		s.ByStatus[string(st)] = p.count(st) + p.finished.gone[st]
	}
	for _, pr := range domain.Priorities {
		s.ByPriority[pr.String()] = p.byPrio[pr]
		s.QueuedByPriority[pr.String()] = p.lanes[pr].Len()
	}
	s.Queued = p.count(domain.StatusQueued)
	s.DeadLetter = p.count(domain.StatusDeadLetter)
	return s
}

// State is a plain, comparable copy of the whole projection, for tests
// and for replay output.
type State struct {
	LastSeq uint64         `json:"last_seq"`
	Tasks   []*domain.Task `json:"tasks"`
	Queue   []string       `json:"queue"`
}

// State returns every task (queue order) and the queue's task ids in
// order, all read at one moment.
func (p *Tasks) State() State {
	p.mu.RLock()
	defer p.mu.RUnlock()
	all := p.list(Filter{})
	all = append(all, p.list(Filter{Status: domain.StatusDeadLetter})...)
	var queue []string
	for _, t := range p.queued(Filter{}) {
		queue = append(queue, t.ID)
	}
	return State{LastSeq: p.lastSeq, Tasks: all, Queue: queue}
}
