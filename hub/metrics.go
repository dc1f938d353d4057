package hub

import (
	"context"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/metrics"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol/ops"
)

// startMetrics builds the metrics on the telemetry (none flows with
// telemetry off: the counters stay at zero, the gauges still read the
// projections) and samples the queue depth every minute.
func (h *Hub) startMetrics(context.Context) error {
	h.metrics = metrics.New(metrics.Params{State: h.metricsState, LogLines: h.log.Levels().Lines,
		Dropped: h.tel.Dropped, Alerts: func() config.Alerts { return h.settings.Current().Alerts },
		Log: h.log, Telemetry: h.tel, Now: h.now})
	if h.tel != nil {
		h.metrics.Attach(h.tel)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stopSampling = cancel
	h.settings.Watch(func(config.Hub) { h.metrics.Rearm() })
	go h.metrics.Run(ctx)
	go h.metrics.RunAlerts(ctx)
	return nil
}

// stopMetrics ends the minute samples.
func (h *Hub) stopMetrics(context.Context) {
	if h.stopSampling != nil {
		h.stopSampling()
	}
}

// metricsState is what is true now: the projections' counts, the agents'
// slots, the store's health.
func (h *Hub) metricsState(ctx context.Context) metrics.State {
	stats := h.views.Tasks.Stats()
	st := metrics.State{QueuedByPriority: stats.QueuedByPriority, ByStatus: stats.ByStatus}
	for _, status := range []domain.Status{domain.StatusAssigned, domain.StatusWorking} {
		for _, t := range h.views.Tasks.List(projections.Filter{Status: status}) {
			st.Active = append(st.Active, t.UpdatedAt)
		}
	}
	for _, a := range h.views.Agents.List() {
		st.Agents = append(st.Agents, ops.AgentUse{AgentID: a.ID, State: string(a.State), Tasks: len(a.Tasks),
			Slots: a.Slots()})
	}
	health, err := h.ops.StoreHealth(ctx)
	if err != nil {
		st.Store = ops.StoreHealthDigest{Status: "unhealthy", Reasons: []string{err.Error()}}
		return st
	}
	st.Store = ops.StoreHealthDigest{Status: health.Status, Reasons: health.Reasons}
	for _, s := range health.Streams {
		if s.Name == broker.EventsStream {
			st.Store.Events, st.Store.Bytes, st.Store.LastSeq = s.Messages, s.Bytes, s.LastSeq
			st.Store.Lag = s.LastSeq - min(stats.LastSeq, s.LastSeq)
		}
	}
	return st
}
