package projections

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/agentcom/agentcom/domain"
)

// CodeVersion names the projection code. Bump it whenever applying the
// same events (here or in the domain's Evolve functions) would give a
// different state, so that snapshots taken by older code are discarded
// and the projections rebuilt from the stream.
const CodeVersion = 2 // 2: usage by day and agent

// snapshotFormat is the layout of the JSON that Snapshot writes.
const snapshotFormat = 1

// snapshotDoc is the whole state of the views. The indexes (queue lanes,
// status sets, priority counts) are derived again on restore; the task
// holders are kept, as they depend on the order of past events.
type snapshotDoc struct {
	Format  int               `json:"format"`
	LastSeq uint64            `json:"last_seq"`
	Agents  []agentRecord     `json:"agents"`
	Holders map[string]string `json:"holders"`
	// Gone counts the finished tasks that left memory, by status and
	// priority (see finishedSet).
	Gone     map[domain.Status]int      `json:"gone,omitempty"`
	GonePrio *[domain.PriorityCount]int `json:"gone_by_priority,omitempty"`
	// Usage is the completions' usage by day and agent.
	Usage []UsageRow `json:"usage,omitempty"`
	// Goals is every goal's tasks and their statuses.
	Goals map[string]map[string]domain.Status `json:"goals,omitempty"`
	// Tasks is written as chunks, each on its own line (see encode).
	Tasks []taskRecord `json:"-"`
}

// taskRecord is one task entry: the task, the sequence of its newest
// event and its queue order.
type taskRecord struct {
	Seq   uint64       `json:"seq"`
	Order uint64       `json:"order"`
	Task  *domain.Task `json:"task"`
}

// agentRecord is one agent entry: the agent and its newest own event.
type agentRecord struct {
	Seq   uint64        `json:"seq"`
	Agent *domain.Agent `json:"agent"`
}

// Snapshot returns the whole state of the views as one JSON document,
// deterministic for a given state (tasks by submission order, agents by
// id).
// The tasks come last, as an array of chunks, one chunk a line, so that
// ViewsFromSnapshot decodes them in parallel. See SnapshotSeq.
func (v *Views) Snapshot() ([]byte, error) {
	b, _, err := v.SnapshotSeq()
	return b, err
}

// SnapshotSeq is Snapshot that also returns the sequence of the newest
// event the snapshot holds. Events may be applied meanwhile: the state is
// read at one sequence under the views' read lock, then encoded
// without it.
func (v *Views) SnapshotSeq() ([]byte, uint64, error) {
	doc, err := v.capture()
	if err != nil {
		return nil, 0, err
	}
	b, err := doc.encode()
	if err != nil {
		return nil, 0, err
	}
	return b, doc.LastSeq, nil
}

// capture reads the state at one sequence and sorts it. It copies the
// entries (their values are never changed in place) under the views' read
// lock, so no apply is halfway.
func (v *Views) capture() (*snapshotDoc, error) {
	v.mu.RLock()
	t, a := v.Tasks, v.Agents
	t.mu.RLock()
	a.mu.RLock()
	doc, err := capturedLocked(t, a)
	a.mu.RUnlock()
	t.mu.RUnlock()
	v.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	doc.sort()
	return doc, nil
}

// capturedLocked copies both projections, with their locks held.
func capturedLocked(t *Tasks, a *Agents) (*snapshotDoc, error) {
	if t.lastSeq != a.lastSeq { // an apply failed halfway: the hub stops taking commands
		return nil, fmt.Errorf("snapshot views: tasks at %d, agents at %d", t.lastSeq, a.lastSeq)
	}
	doc := &snapshotDoc{Format: snapshotFormat, LastSeq: t.lastSeq, Holders: maps.Clone(a.holders),
		Tasks: make([]taskRecord, 0, len(t.tasks)), Agents: make([]agentRecord, 0, len(a.agents)), Usage: t.usageRows(),
		Goals: t.goalsOf()}
	if t.finished.evicted > 0 {
		doc.Gone = maps.Clone(t.finished.gone)
		prio := t.finished.gonePrio
		doc.GonePrio = &prio
	}
	for _, e := range t.tasks {
		doc.Tasks = append(doc.Tasks, taskRecord{Seq: e.seq, Order: e.order, Task: e.task})
	}
	for _, e := range a.agents {
		doc.Agents = append(doc.Agents, agentRecord{Seq: e.seq, Agent: e.agent})
	}
	return doc, nil
}

// sort puts tasks in order (then id) and agents in id order. A decoded
// snapshot is sorted already; that is checked, which costs less.
func (d *snapshotDoc) sort() {
	byOrder := func(x, y taskRecord) int {
		return cmp.Or(cmp.Compare(x.Order, y.Order), cmp.Compare(x.Task.ID, y.Task.ID))
	}
	if !slices.IsSortedFunc(d.Tasks, byOrder) {
		slices.SortFunc(d.Tasks, byOrder)
	}
	slices.SortFunc(d.Agents, func(x, y agentRecord) int { return cmp.Compare(x.Agent.ID, y.Agent.ID) })
}

// ViewsFromSnapshot rebuilds views from what Snapshot returned, with every
// index as applying the events would have built it.
func ViewsFromSnapshot(b []byte) (*Views, error) {
	doc, err := decodeSnapshot(b)
	if err != nil {
		return nil, err
	}
	doc.sort()
	v := NewViews()
	if err := v.Tasks.restore(doc); err != nil {
		return nil, fmt.Errorf("restore tasks: %w", err)
	}
	if err := v.Agents.restore(doc); err != nil {
		return nil, fmt.Errorf("restore agents: %w", err)
	}
	return v, nil
}

// restore fills an empty task projection from sorted records.
func (p *Tasks) restore(doc *snapshotDoc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.presize(doc); err != nil {
		return err
	}
	for _, r := range doc.Tasks {
		t := r.Task
		if _, dup := p.tasks[t.ID]; dup {
			return fmt.Errorf("task %s appears twice", t.ID)
		}
		p.tasks[t.ID] = &entry{task: t, seq: r.Seq, order: r.Order}
		p.indexStatus(r.Order, t)
		p.byPrio[t.Priority]++
	}
	p.restoreFinished(doc)
	p.restoreUsage(doc.Usage)
	p.restoreFlow(doc.Goals)
	p.lastSeq = doc.LastSeq
	return nil
}

// restoreFinished puts the finished tasks in memory back in the order they
// finished (the sequence of their newest event) and restores what left.
// Lock held.
func (p *Tasks) restoreFinished(doc *snapshotDoc) {
	var done []taskRecord
	for _, r := range doc.Tasks {
		if r.Task.Status.Final() {
			done = append(done, r)
		}
	}
	slices.SortFunc(done, func(x, y taskRecord) int { return cmp.Compare(x.Seq, y.Seq) })
	p.finished.order = ring{}
	for _, r := range done {
		p.finished.order.push(r.Task.ID)
	}
	for st, n := range doc.Gone {
		p.finished.gone[st] += n
		p.finished.evicted += n
	}
	if doc.GonePrio != nil {
		p.finished.gonePrio = *doc.GonePrio
		for i, n := range doc.GonePrio {
			p.byPrio[i] += n
		}
	}
}

// presize checks every record and makes the maps as large as they will
// be, which saves growing them one task at a time.
func (p *Tasks) presize(doc *snapshotDoc) error {
	counts := map[domain.Status]int{}
	for _, r := range doc.Tasks {
		if err := checkTask(r, doc.LastSeq); err != nil {
			return err
		}
		counts[r.Task.Status]++
	}
	p.tasks = make(map[string]*entry, len(doc.Tasks))
	for st, n := range counts {
		if st != domain.StatusQueued { // queued tasks are indexed by their lanes alone
			p.byStatus[st] = make(map[string]struct{}, n)
		}
	}
	return nil
}

// checkTask rejects a record that applying events could not have made.
func checkTask(r taskRecord, lastSeq uint64) error {
	t := r.Task
	switch {
	case t == nil || t.ID == "":
		return errors.New("a task record has no task")
	case !t.Priority.Valid():
		return fmt.Errorf("task %s: invalid priority %d", t.ID, t.Priority)
	case !slices.Contains(domain.Statuses, t.Status):
		return fmt.Errorf("task %s: unknown status %q", t.ID, t.Status)
	case r.Seq == 0 || r.Seq > lastSeq || r.Order == 0:
		return fmt.Errorf("task %s: sequence %d or order %d out of range (last %d)", t.ID, r.Seq, r.Order, lastSeq)
	}
	return nil
}

// restore fills an empty agent projection from sorted records.
func (p *Agents) restore(doc *snapshotDoc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range doc.Agents {
		a := r.Agent
		if a == nil || a.ID == "" {
			return errors.New("an agent record has no agent")
		}
		if _, dup := p.agents[a.ID]; dup {
			return fmt.Errorf("agent %s appears twice", a.ID)
		}
		if r.Seq == 0 || r.Seq > doc.LastSeq {
			return fmt.Errorf("agent %s: sequence %d out of range (last %d)", a.ID, r.Seq, doc.LastSeq)
		}
		a.Upgrade() // a snapshot from before slots
		p.agents[a.ID] = &agentEntry{agent: a, seq: r.Seq}
	}
	for task, agent := range doc.Holders {
		if _, ok := p.agents[agent]; !ok {
			return fmt.Errorf("task %s is held by unknown agent %s", task, agent)
		}
		p.holders[task] = agent
	}
	p.lastSeq = doc.LastSeq
	return nil
}
