package storeops

import (
	"context"
	"time"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol/ops"
)

// CompactResult is what one compaction did (the operations table's type).
type CompactResult = ops.CompactResult

// Compact summarises every finished task (completed or cancelled) last
// changed before the retention period into one task.compacted event,
// which replaces the task's earlier events in the stream (a subject
// rollup). Queued, running, dead-lettered and recent tasks are untouched,
// and a replay gives the same state as before. It is a telemetry span
// (store.compaction) and logs at notice, or error on failure.
func (o *Ops) Compact(ctx context.Context) (CompactResult, error) {
	return o.CompactBefore(ctx, o.now().Add(-o.cfg.Store.Retention))
}

// CompactBefore compacts the finished tasks last changed before cut.
func (o *Ops) CompactBefore(ctx context.Context, cut time.Time) (CompactResult, error) {
	res := CompactResult{Before: cut.UTC()}
	err := o.tel.Span("store.compaction", map[string]any{"before": res.Before.Format(time.RFC3339)},
		func() (map[string]any, error) {
			if err := o.store.CanCompact(); err != nil {
				return nil, err
			}
			if err := o.compactTasks(ctx, &res); err != nil {
				return nil, err
			}
			return map[string]any{"compacted": res.Compacted, "failed": res.Failed,
				"events_removed": res.EventsBefore - res.EventsAfter}, nil
		})
	log := o.log.Module("store")
	o.rec.record(&o.rec.compaction, err == nil, map[string]any{"compacted": res.Compacted, "failed": res.Failed})
	if err != nil {
		log.Error().Err(err).Msg("compaction failed")
		return res, err
	}
	log.Notice().Int("compacted", res.Compacted).Int("failed", res.Failed).Uint64("events_before", res.EventsBefore).
		Uint64("events_after", res.EventsAfter).Msg("compaction done")
	if res.Compacted > 0 {
		// The snapshot may point at an event the rollup removed: replace it
		// now, so a crash does not look like lost data at the next start.
		_ = o.SaveSnapshot(ctx)
	}
	return res, nil
}

func (o *Ops) compactTasks(ctx context.Context, res *CompactResult) error {
	info, err := o.store.Info(ctx)
	if err != nil {
		return err
	}
	res.EventsBefore = info.State.Msgs
	for _, st := range []domain.Status{domain.StatusCompleted, domain.StatusCancelled} {
		for _, t := range o.views.Tasks.List(projections.Filter{Status: st}) {
			if t.Compacted || !t.UpdatedAt.Before(res.Before) || !o.goalSettled(t) {
				continue
			}
			cmd := domain.CompactTask{ID: t.ID, Before: res.Before, Order: o.views.Tasks.Order(t.ID)}
			if _, err := o.svc.Execute(ctx, cmd); err != nil {
				res.Failed++
				continue
			}
			res.Compacted++
		}
	}
	if o.views.Tasks.Left() > 0 {
		if err := o.compactLeft(ctx, res); err != nil {
			return err
		}
	}
	if info, err = o.store.Info(ctx); err != nil {
		return err
	}
	res.EventsAfter = info.State.Msgs
	return nil
}

// goalSettled reports whether t's goal lets it compact: a goal's finished
// tasks compact together, once none of its tasks is open.
func (o *Ops) goalSettled(t *domain.Task) bool {
	g := t.Goal()
	if g == "" {
		return true
	}
	return domain.Settle(o.views.Tasks.GoalCounts(g)) != domain.GoalStatusOpen
}

// every runs fn every interval until the hub stops.
func (o *Ops) every(interval time.Duration, fn func(context.Context)) {
	o.jobs.Add(1)
	go func() {
		defer o.jobs.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-o.quit:
				return
			case <-tick.C:
				ctx, cancel := o.jobContext()
				fn(ctx)
				cancel()
			}
		}
	}()
}

// jobContext bounds one run of a background job: an hour, or until the
// hub stops, so that a store that does not answer (a full disk) cannot
// hold the hub's stop.
func (o *Ops) jobContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(o.life, time.Hour)
}
