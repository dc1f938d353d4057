package hub

import (
	"context"
	"time"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/projections"
)

// CompactResult is what one compaction did.
type CompactResult struct {
	Before       time.Time `json:"before"`
	Compacted    int       `json:"compacted"`
	Failed       int       `json:"failed"`
	EventsBefore uint64    `json:"events_before"`
	EventsAfter  uint64    `json:"events_after"`
}

// Compact summarises every finished task (completed or cancelled) last
// changed before the retention period into one task.compacted event,
// which replaces the task's earlier events in the stream (a subject
// rollup). Queued, running, dead-lettered and recent tasks are untouched,
// and a replay gives the same state as before. It is a telemetry span
// (store.compaction) and logs at notice, or error on failure.
func (h *Hub) Compact(ctx context.Context) (CompactResult, error) {
	return h.compactBefore(ctx, h.now().Add(-h.cfg.Store.Retention))
}

// compactBefore compacts the finished tasks last changed before cut.
func (h *Hub) compactBefore(ctx context.Context, cut time.Time) (CompactResult, error) {
	res := CompactResult{Before: cut.UTC()}
	err := h.tel.Span("store.compaction", map[string]any{"before": res.Before.Format(time.RFC3339)},
		func() (map[string]any, error) {
			if err := h.store.CanCompact(); err != nil {
				return nil, err
			}
			if err := h.compactTasks(ctx, &res); err != nil {
				return nil, err
			}
			return map[string]any{"compacted": res.Compacted, "failed": res.Failed,
				"events_removed": res.EventsBefore - res.EventsAfter}, nil
		})
	log := h.log.Module("store")
	h.ops.record(&h.ops.compaction, err == nil, map[string]any{"compacted": res.Compacted, "failed": res.Failed})
	if err != nil {
		log.Error().Err(err).Msg("compaction failed")
		return res, err
	}
	log.Notice().Int("compacted", res.Compacted).Int("failed", res.Failed).Uint64("events_before", res.EventsBefore).
		Uint64("events_after", res.EventsAfter).Msg("compaction done")
	if res.Compacted > 0 {
		// The snapshot may point at an event the rollup removed: replace it
		// now, so a crash does not look like lost data at the next start.
		_ = h.saveSnapshot(ctx)
	}
	return res, nil
}

func (h *Hub) compactTasks(ctx context.Context, res *CompactResult) error {
	info, err := h.store.Info(ctx)
	if err != nil {
		return err
	}
	res.EventsBefore = info.State.Msgs
	for _, st := range []domain.Status{domain.StatusCompleted, domain.StatusCancelled} {
		for _, t := range h.views.Tasks.List(projections.Filter{Status: st}) {
			if t.Compacted || !t.UpdatedAt.Before(res.Before) {
				continue
			}
			cmd := domain.CompactTask{ID: t.ID, Before: res.Before, Order: h.views.Tasks.Order(t.ID)}
			if _, err := h.svc.Execute(ctx, cmd); err != nil {
				res.Failed++
				continue
			}
			res.Compacted++
		}
	}
	if info, err = h.store.Info(ctx); err != nil {
		return err
	}
	res.EventsAfter = info.State.Msgs
	return nil
}

// every runs fn every interval until the hub stops.
func (h *Hub) every(interval time.Duration, fn func(context.Context)) {
	h.jobs.Add(1)
	go func() {
		defer h.jobs.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-h.quit:
				return
			case <-tick.C:
				ctx, cancel := h.jobContext()
				fn(ctx)
				cancel()
			}
		}
	}()
}

// jobContext bounds one run of a background job: an hour, or until the
// hub stops, so that a store that does not answer (a full disk) cannot
// hold the hub's stop.
func (h *Hub) jobContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(h.life, time.Hour)
}
