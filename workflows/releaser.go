package workflows

import (
	"context"
	"sync"
	"time"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/writer"
)

// Releaser settles waiting tasks: when the events that applied settle a
// task's dependency (or start a task waiting), it judges the waiting task
// against its dependencies and queues or cancels it. It judges on its own
// goroutine, never on the applier's.
type Releaser struct {
	svc   *writer.Service
	tasks *projections.Tasks
	log   logsink.Logger
	*queue
}

// NewReleaser returns a releaser over the writer and the task projection.
func NewReleaser(svc *writer.Service, tasks *projections.Tasks, log logsink.Logger) *Releaser {
	r := &Releaser{svc: svc, tasks: tasks, log: log.Module("workflows")}
	r.queue = newQueue(r.judge, r.waiting)
	return r
}

// Start judges every task waiting now (a dependency may have settled
// while the hub was down) and then follows the applied events.
func (r *Releaser) Start() {
	for _, id := range r.waiting() {
		r.mark(id)
	}
	r.start()
}

// waiting lists the waiting tasks' ids.
func (r *Releaser) waiting() []string {
	var ids []string
	for _, t := range r.tasks.List(projections.Filter{Status: domain.StatusWaiting}) {
		ids = append(ids, t.ID)
	}
	return ids
}

// Applied notes the waiting tasks an applied group concerns: those it
// started waiting, and the dependents of the tasks it settled.
func (r *Releaser) Applied(g writer.Applied) {
	for _, env := range g.Events {
		switch env.Type {
		case domain.TypeTaskWaiting:
			r.mark(env.Aggregate)
		case domain.TypeTaskCompleted, domain.TypeTaskDeadLettered, domain.TypeTaskCancelled:
			for _, id := range r.tasks.Dependents(env.Aggregate) {
				r.mark(id)
			}
		}
	}
}

// queue runs fn for each marked id on one goroutine, each id once however
// often it was marked since its last run.
type queue struct {
	fn func(id string)
	// all lists every id to look at again each SweepInterval: what an
	// applied group did not say (events the writer applied while it caught
	// up after an unknown outcome) is seen within that.
	all     func() []string
	mu      sync.Mutex
	due     map[string]struct{}
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	started bool
}

// SweepInterval is how often the waiting tasks and open goals are all
// looked at again.
const SweepInterval = 10 * time.Second

func newQueue(fn func(string), all func() []string) *queue {
	return &queue{fn: fn, all: all, due: map[string]struct{}{}, kick: make(chan struct{}, 1), quit: make(chan struct{}),
		done: make(chan struct{})}
}

func (q *queue) start() {
	q.started = true
	go q.run()
}

// Stop ends the loop; a run in flight finishes first.
func (q *queue) Stop() {
	if !q.started {
		return
	}
	close(q.quit)
	<-q.done
}

func (q *queue) mark(id string) {
	q.mu.Lock()
	q.due[id] = struct{}{}
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *queue) run() {
	defer close(q.done)
	sweep := time.NewTicker(SweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-q.quit:
			return
		case <-q.kick:
		case <-sweep.C:
			for _, id := range q.all() {
				q.mark(id)
			}
			continue
		}
		q.mu.Lock()
		due := q.due
		q.due = map[string]struct{}{}
		q.mu.Unlock()
		for id := range due {
			q.fn(id)
		}
	}
}

// judge queues or cancels one waiting task if its dependencies say so.
func (r *Releaser) judge(id string) {
	t, _, ok := r.tasks.Peek(id)
	if !ok || t.Status != domain.StatusWaiting {
		return
	}
	deps := r.dependencies(t)
	v := domain.Judge(t, deps)
	if !v.Release && !v.Cancel {
		return
	}
	rid := logsink.RequestIDOr(t.RequestID) // the submit's follows the task
	ctx, cancel := context.WithTimeout(logsink.WithRequestID(context.Background(), rid), writer.AppendTimeout)
	defer cancel()
	if _, err := r.svc.Execute(ctx, domain.ReleaseTask{ID: id, Deps: deps}); err != nil {
		r.log.Ctx(ctx).Warning().Err(err).Str("task_id", id).Msg("waiting task not settled")
		return
	}
	if v.Cancel {
		r.log.Ctx(ctx).Warning().Str("task_id", id).Str("dependency", v.By).Str("reason", v.Reason).
			Msg("task cancelled: a dependency failed")
		return
	}
	r.log.Ctx(ctx).Info().Str("task_id", id).Str("by", v.By).Msg("task released: its dependencies are done")
}

// dependencies reads the status of each of t's dependencies ("" for one
// not stored yet).
func (r *Releaser) dependencies(t *domain.Task) []domain.Dependency {
	deps := make([]domain.Dependency, len(t.Deps()))
	for i, id := range t.Deps() {
		deps[i].ID = id
		if d, _, ok := r.tasks.Get(id); ok {
			deps[i].Status = d.Status
		}
	}
	return deps
}
