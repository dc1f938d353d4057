package projections

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"github.com/agentcom/agentcom/domain"
)

// entry is one task with its place in the stream.
type entry struct {
	task *domain.Task
	// seq is the stream sequence of the task's newest event, the expected
	// last sequence for its next append.
	seq uint64
	// order is the sequence of its submission: the queue's age key, kept
	// when the task is queued again so a retried task does not lose its turn.
	order uint64
}

// queueKey places a task in a priority lane.
type queueKey struct {
	order uint64
	id    string
}

// Tasks is the task read model. Task pointers it returns are shared and
// must not be changed: every event makes a new task value.
type Tasks struct {
	// mu comes after Views.mu, before Agents.mu (lock order: views.go).
	mu       sync.RWMutex
	tasks    map[string]*entry
	lanes    [domain.PriorityCount][]queueKey
	byStatus map[domain.Status]map[string]struct{}
	byPrio   [domain.PriorityCount]int
	lastSeq  uint64
}

// NewTasks returns an empty task projection.
func NewTasks() *Tasks {
	p := &Tasks{tasks: map[string]*entry{}, byStatus: map[domain.Status]map[string]struct{}{}}
	for _, s := range domain.Statuses {
		p.byStatus[s] = map[string]struct{}{}
	}
	return p
}

// Apply applies events in stream order. Each event's Seq must be greater
// than the last applied one, and every event but a submission must name a
// known task; anything else means the stream and the projection disagree,
// and it is an error rather than a silent skip.
func (p *Tasks) Apply(envs ...domain.Envelope) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, env := range envs {
		if err := p.apply(env); err != nil {
			return err
		}
	}
	return nil
}

func (p *Tasks) apply(env domain.Envelope) error {
	if env.Seq <= p.lastSeq {
		return fmt.Errorf("apply event %s: sequence %d is not after %d", env.ID, env.Seq, p.lastSeq)
	}
	if env.IsAgent() || env.IsStore() {
		p.lastSeq = env.Seq // not ours, but seen
		return nil
	}
	old := p.tasks[env.Aggregate]
	var prev *domain.Task
	if old != nil {
		prev = old.task
	}
	next := domain.Evolve(prev, env)
	if next == nil {
		return fmt.Errorf("apply event %s (%s, seq %d): task %s is unknown", env.ID, env.Type, env.Seq, env.Aggregate)
	}
	if old == nil {
		old = &entry{order: env.Seq}
		if c, ok := env.Data.(domain.TaskCompacted); ok && c.Order > 0 {
			old.order = c.Order
		}
		p.tasks[env.Aggregate] = old
	}
	p.index(old, prev, next)
	old.task, old.seq, p.lastSeq = next, env.Seq, env.Seq
	return nil
}

// index moves a task between status sets and queue lanes.
func (p *Tasks) index(e *entry, prev, next *domain.Task) {
	if prev == nil {
		p.byPrio[next.Priority]++
	}
	if prev != nil && prev.Status == next.Status {
		return
	}
	key := queueKey{order: e.order, id: next.ID}
	if prev != nil {
		delete(p.byStatus[prev.Status], next.ID)
		if prev.Status == domain.StatusQueued {
			p.lanes[prev.Priority] = removeKey(p.lanes[prev.Priority], key)
		}
	}
	p.byStatus[next.Status][next.ID] = struct{}{}
	if next.Status == domain.StatusQueued {
		p.lanes[next.Priority] = insertKey(p.lanes[next.Priority], key)
	}
}

func compareKey(a, b queueKey) int { return cmp.Compare(a.order, b.order) }

func insertKey(lane []queueKey, k queueKey) []queueKey {
	i, _ := slices.BinarySearchFunc(lane, k, compareKey)
	return slices.Insert(lane, i, k)
}

func removeKey(lane []queueKey, k queueKey) []queueKey {
	i, found := slices.BinarySearchFunc(lane, k, compareKey)
	if !found {
		return lane
	}
	return slices.Delete(lane, i, i+1)
}

// LastSeq is the sequence of the newest applied event.
func (p *Tasks) LastSeq() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.lastSeq
}

// Order is a task's place in its queue lane: its submission's sequence.
func (p *Tasks) Order(id string) uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if e, ok := p.tasks[id]; ok {
		return e.order
	}
	return 0
}

// Get returns a task and the sequence of its newest event.
func (p *Tasks) Get(id string) (*domain.Task, uint64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.tasks[id]
	if !ok {
		return nil, 0, false
	}
	return e.task, e.seq, true
}
