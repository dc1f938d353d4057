package projections

import "github.com/agentcom/agentcom/domain"

// finishedSet is the order in which finished tasks stay in memory, oldest
// first, and what left: counts by status and priority.
type finishedSet struct {
	keep  int // 0: keep every finished task
	order ring
	gone  map[domain.Status]int
	// gonePrio counts them by priority (a snapshot's records no longer do).
	gonePrio [domain.PriorityCount]int
	evicted  int // how many ever left
	// base is the sequence the projection started from (its snapshot's),
	// and live is set once it caught up with the stream: they tell a
	// compaction of a task that left memory from one seen first (below).
	base uint64
	live bool
}

func newFinishedSet() finishedSet {
	return finishedSet{gone: map[domain.Status]int{}}
}

func (f *finishedSet) add(id string) { f.order.push(id) }

// over pops the oldest finished task while more than keep are held.
func (f *finishedSet) over() (string, bool) {
	if f.keep == 0 || f.order.len() <= f.keep {
		return "", false
	}
	return f.order.pop(), true
}

// left counts a task that left memory.
func (f *finishedSet) left(t *domain.Task) {
	f.evicted++
	f.gone[t.Status]++
	f.gonePrio[t.Priority]++
}

// counted tells whether the task of a compaction event that is not in
// memory was counted already (it left memory) rather than seen here for
// the first time. A compaction replaces all of a task's earlier events,
// so a replay meets it first unless the task was in the snapshot the
// replay started from (its submission, order, at or before base); a
// compaction decided live was decided on a task this projection holds or
// let go.
func (f *finishedSet) counted(order uint64) bool {
	return f.evicted > 0 && (f.live || order <= f.base)
}

// ring is a FIFO of ids that reuses its storage.
type ring struct {
	buf        []string
	head, size int
}

func (r *ring) len() int { return r.size }

func (r *ring) push(id string) {
	if r.size == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.size)%len(r.buf)] = id
	r.size++
}

func (r *ring) pop() string {
	id := r.buf[r.head]
	r.buf[r.head] = ""
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return id
}

func (r *ring) grow() {
	n := make([]string, max(16, 2*len(r.buf)))
	for i := range r.size {
		n[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = n, 0
}
