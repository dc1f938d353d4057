package workflows

import (
	"context"
	"sync"

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

	mu      sync.Mutex
	due     map[string]struct{} // waiting tasks to judge
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	started bool
}

// NewReleaser returns a releaser over the writer and the task projection.
func NewReleaser(svc *writer.Service, tasks *projections.Tasks, log logsink.Logger) *Releaser {
	return &Releaser{svc: svc, tasks: tasks, log: log.Module("workflows"), due: map[string]struct{}{},
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// Start judges every task waiting now (a dependency may have settled
// while the hub was down) and then follows the applied events.
func (r *Releaser) Start() {
	for _, t := range r.tasks.List(projections.Filter{Status: domain.StatusWaiting}) {
		r.mark(t.ID)
	}
	r.started = true
	go r.run()
}

// Stop ends the loop; a judgement in flight finishes first.
func (r *Releaser) Stop() {
	if !r.started {
		return
	}
	close(r.quit)
	<-r.done
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

func (r *Releaser) mark(id string) {
	r.mu.Lock()
	r.due[id] = struct{}{}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Releaser) run() {
	defer close(r.done)
	for {
		select {
		case <-r.quit:
			return
		case <-r.kick:
		}
		r.mu.Lock()
		due := r.due
		r.due = map[string]struct{}{}
		r.mu.Unlock()
		for id := range due {
			r.judge(id)
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
	ctx, cancel := context.WithTimeout(logsink.WithRequestID(context.Background(), requestIDOf(t)), writer.AppendTimeout)
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

// requestIDOf is the id that follows a task: its submit's.
func requestIDOf(t *domain.Task) string {
	if t.RequestID != "" {
		return t.RequestID
	}
	return logsink.NewRequestID()
}
