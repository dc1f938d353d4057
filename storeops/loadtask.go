package storeops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
)

// loadTimeout bounds reading one task back from the stream.
const loadTimeout = 5 * time.Second

// storedTask is a task read back from its subject in the stream.
type storedTask struct {
	task  *domain.Task
	seq   uint64 // its newest event's
	order uint64 // its submission's: its place in its queue lane
}

// loadTask reads a task that left memory (finished long ago) back from its
// subject in the stream: its events folded into its state, and the
// sequence of the newest. A failed read is logged and answers "not found".
func (o *Ops) loadTask(id string) (*domain.Task, uint64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	st, err := o.readTask(ctx, id)
	if err != nil {
		o.log.Module("store").Error().Err(err).Str("task_id", id).Msg("read task back from the stream failed")
		return nil, 0, false
	}
	return st.task, st.seq, st.task != nil
}

// readTask folds the events of one task's subject.
func (o *Ops) readTask(ctx context.Context, id string) (storedTask, error) {
	var st storedTask
	err := o.store.Read(ctx, broker.ReadOpts{Subject: broker.TaskEvents(id)}, func(env domain.Envelope) error {
		if st.task == nil {
			st.order = env.Seq
			if c, ok := env.Data.(domain.TaskCompacted); ok && c.Order > 0 {
				st.order = c.Order
			}
		}
		st.task, st.seq = domain.Evolve(st.task, env), env.Seq
		return nil
	})
	if err != nil {
		return storedTask{}, fmt.Errorf("read task %s: %w", id, err)
	}
	return st, nil
}

// compactLeft compacts the finished tasks that left memory and last
// changed before the cut: it reads the stream from its start to the first
// event at or after the cut, and compacts each task whose final event it
// meets there (the final event is a task's last, so it changed no later).
func (o *Ops) compactLeft(ctx context.Context, res *CompactResult) error {
	err := o.store.Read(ctx, broker.ReadOpts{}, func(env domain.Envelope) error {
		if !env.Time.Before(res.Before) {
			return broker.ErrStop
		}
		if env.Type != domain.TypeTaskCompleted && env.Type != domain.TypeTaskCancelled {
			return nil
		}
		if _, _, held := o.views.Tasks.Peek(env.Aggregate); held {
			return nil // compacted from memory
		}
		o.compactStored(ctx, env.Aggregate, res)
		return ctx.Err()
	})
	if err != nil && !errors.Is(err, broker.ErrStop) {
		return fmt.Errorf("read events to compact: %w", err)
	}
	return nil
}

// compactStored compacts one task read back from the stream.
func (o *Ops) compactStored(ctx context.Context, id string, res *CompactResult) {
	st, err := o.readTask(ctx, id)
	if err != nil || st.task == nil {
		res.Failed++
		return
	}
	if st.task.Compacted || !st.task.Status.Final() || !o.goalSettled(st.task) {
		return
	}
	if _, err := o.svc.Execute(ctx, domain.CompactTask{ID: id, Before: res.Before, Order: st.order}); err != nil {
		res.Failed++
		return
	}
	res.Compacted++
}
