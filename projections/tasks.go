package projections

import (
	"fmt"
	"sync"

	"github.com/google/btree"

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

func lessKey(a, b queueKey) bool { return a.order < b.order || (a.order == b.order && a.id < b.id) }

// laneDegree is the B-tree degree of a queue lane: wide nodes, few levels.
const laneDegree = 32

// Loader reads a task that left memory back from the event stream: the
// task, the sequence of its newest event, and whether it exists.
type Loader func(id string) (*domain.Task, uint64, bool)

// Tasks is the task read model. Task pointers it returns are shared and
// must not be changed: every event makes a new task value.
//
// Open tasks (queued, running, dead-lettered) are always in memory. With
// a limit (SetKeepFinished), only the newest finished ones (completed,
// cancelled) stay; older ones leave memory and Get reads them back
// through the Loader. Counts (Stats) still cover every task.
type Tasks struct {
	// mu comes after Views.mu, before Agents.mu (lock order: views.go).
	mu       sync.RWMutex
	tasks    map[string]*entry
	lanes    [domain.PriorityCount]*btree.BTreeG[queueKey] // the queued tasks, in order
	byStatus map[domain.Status]map[string]struct{}         // the other tasks in memory, by status
	byPrio   [domain.PriorityCount]int
	lastSeq  uint64
	finished finishedSet
	load     Loader
	// usage sums the completions' reported usage by UTC day and agent.
	usage map[usageKey]*UsageRow
	// flow indexes waiting tasks by dependency and tasks by goal.
	flow workflowIndex
}

// NewTasks returns an empty task projection that keeps every task.
func NewTasks() *Tasks {
	p := &Tasks{tasks: map[string]*entry{}, byStatus: map[domain.Status]map[string]struct{}{},
		finished: newFinishedSet(), usage: map[usageKey]*UsageRow{}, flow: newWorkflowIndex()}
	for _, s := range domain.Statuses {
		p.byStatus[s] = map[string]struct{}{}
	}
	for i := range p.lanes {
		p.lanes[i] = btree.NewG(laneDegree, lessKey)
	}
	return p
}

// SetKeepFinished bounds how many finished tasks stay in memory (0 keeps
// all), and load reads the others back. Call it before the first Apply.
func (p *Tasks) SetKeepFinished(keep int, load Loader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished.keep, p.load, p.finished.base = keep, load, p.lastSeq
	p.evict()
}

// Left is how many finished tasks left memory.
func (p *Tasks) Left() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.finished.evicted
}

// Live records that the projection caught up with the stream: from now on
// it sees every event as it is appended.
func (p *Tasks) Live() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished.live = true
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
	p.evict()
	return nil
}

func (p *Tasks) apply(env domain.Envelope) error {
	if env.Seq <= p.lastSeq {
		return fmt.Errorf("apply event %s: sequence %d is not after %d", env.ID, env.Seq, p.lastSeq)
	}
	if !env.IsTask() {
		p.lastSeq = env.Seq // not ours, but seen
		return nil
	}
	old := p.tasks[env.Aggregate]
	if c, ok := env.Data.(domain.TaskCompacted); ok && old == nil && p.finished.counted(c.Order) {
		// A compaction of a task that left memory: its state is in the
		// stream, and it is counted already.
		p.lastSeq = env.Seq
		return nil
	}
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
	p.flow.link(prev, next)
	old.task, old.seq, p.lastSeq = next, env.Seq, env.Seq
	p.addUsage(env)
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
	if prev != nil {
		p.unindex(e.order, prev)
	}
	p.indexStatus(e.order, next)
	if next.Status.Final() {
		p.finished.add(next.ID)
	}
}

// indexStatus files t under its status: a queued task in its priority
// lane (the lanes are the only index of queued tasks), any other in its
// status set. Lock held.
func (p *Tasks) indexStatus(order uint64, t *domain.Task) {
	if t.Status == domain.StatusQueued {
		p.lanes[t.Priority].ReplaceOrInsert(queueKey{order: order, id: t.ID})
	} else {
		p.byStatus[t.Status][t.ID] = struct{}{}
	}
}

// unindex undoes indexStatus. Lock held.
func (p *Tasks) unindex(order uint64, t *domain.Task) {
	if t.Status == domain.StatusQueued {
		p.lanes[t.Priority].Delete(queueKey{order: order, id: t.ID})
	} else {
		delete(p.byStatus[t.Status], t.ID)
	}
}

// count is how many tasks in memory have status st. Lock held.
func (p *Tasks) count(st domain.Status) int {
	if st != domain.StatusQueued {
		return len(p.byStatus[st])
	}
	n := 0
	for _, lane := range p.lanes {
		n += lane.Len()
	}
	return n
}

// evict lets the oldest finished tasks leave memory, down to the limit.
// Lock held.
func (p *Tasks) evict() {
	for id, ok := p.finished.over(); ok; id, ok = p.finished.over() {
		e := p.tasks[id]
		if e == nil || !e.task.Status.Final() {
			continue // gone already, or (never) open again
		}
		delete(p.tasks, id)
		delete(p.byStatus[e.task.Status], id)
		p.finished.left(e.task)
	}
}

// LastSeq is the sequence of the newest applied event.
func (p *Tasks) LastSeq() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.lastSeq
}

// Order is a task's place in its queue lane: its submission's sequence
// (0 for a task not in memory).
func (p *Tasks) Order(id string) uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if e, ok := p.tasks[id]; ok {
		return e.order
	}
	return 0
}

// Get returns a task and the sequence of its newest event. A finished
// task that left memory is read back through the Loader.
func (p *Tasks) Get(id string) (*domain.Task, uint64, bool) {
	if t, seq, ok := p.Peek(id); ok {
		return t, seq, true
	}
	p.mu.RLock()
	load := p.load
	if p.finished.evicted == 0 {
		load = nil // nothing to read back
	}
	p.mu.RUnlock()
	if load == nil {
		return nil, 0, false
	}
	return load(id) // unlocked: it reads the stream
}

// Peek is Get without the Loader: only what is in memory, which is every
// open task.
func (p *Tasks) Peek(id string) (*domain.Task, uint64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.tasks[id]
	if !ok {
		return nil, 0, false
	}
	return e.task, e.seq, true
}
