package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol/ops"
)

// scrapeTimeout bounds reading the state for one scrape.
const scrapeTimeout = 5 * time.Second

// State is what is true now, as the projections and the store say.
type State struct {
	QueuedByPriority map[string]int
	ByStatus         map[string]int
	Agents           []ops.AgentUse
	Store            ops.StoreHealthDigest
	// Active are the assigned and working tasks' last event times.
	Active []time.Time
}

var (
	descQueueDepth = prometheus.NewDesc("agentcom_queue_depth", "Queued tasks, by priority.", []string{"priority"}, nil)
	descTasks      = prometheus.NewDesc("agentcom_tasks", "Tasks the hub holds, by status.", []string{"status"}, nil)
	descAgents     = prometheus.NewDesc("agentcom_agents", "Agents by state-machine state.", []string{"state"}, nil)
	descStoreBytes = prometheus.NewDesc("agentcom_store_bytes", "Bytes of the event stream.", nil, nil)
	descStoreMsgs  = prometheus.NewDesc("agentcom_store_events", "Events in the event stream.", nil, nil)
	descStoreLag   = prometheus.NewDesc("agentcom_store_lag_events",
		"Events stored that the projections have still to apply.", nil, nil)
	descStoreOK = prometheus.NewDesc("agentcom_store_healthy",
		"1 while the store is healthy, 0 while it warns or is unhealthy (see status).", []string{"status"}, nil)
	descLogLines = prometheus.NewDesc("agentcom_log_lines_total", "Log lines the hub wrote, by level.", []string{"level"}, nil)
	descDropped  = prometheus.NewDesc("agentcom_telemetry_dropped_total",
		"Telemetry events that never reached the TELEMETRY stream.", nil, nil)
)

// stateCollector reads the state at each scrape.
type stateCollector struct{ m *Metrics }

// Describe implements prometheus.Collector.
func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueueDepth, descTasks, descAgents, descStoreBytes, descStoreMsgs,
		descStoreLag, descStoreOK, descLogLines, descDropped} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st := c.m.p.State(ctx)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for prio, n := range st.QueuedByPriority {
		gauge(descQueueDepth, float64(n), prio)
	}
	for status, n := range st.ByStatus {
		gauge(descTasks, float64(n), status)
	}
	for state, n := range agentsByState(st.Agents) {
		gauge(descAgents, float64(n), state)
	}
	gauge(descStoreBytes, float64(st.Store.Bytes))
	gauge(descStoreMsgs, float64(st.Store.Events))
	gauge(descStoreLag, float64(st.Store.Lag))
	healthy := 0.0
	if st.Store.Status == "healthy" {
		healthy = 1
	}
	gauge(descStoreOK, healthy, st.Store.Status)
	for level, n := range c.m.p.LogLines() {
		ch <- prometheus.MustNewConstMetric(descLogLines, prometheus.CounterValue, float64(n), level)
	}
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(c.m.p.Dropped()))
}

// agentStates are the states every scrape reports, zero or not.
var agentStates = []domain.AgentState{domain.StateIdle, domain.StateAssigned, domain.StateWorking,
	domain.StateBlocked, domain.StateOffline}

func agentsByState(agents []ops.AgentUse) map[string]int {
	out := map[string]int{}
	for _, s := range agentStates {
		out[string(s)] = 0
	}
	for _, a := range agents {
		out[a.State]++
	}
	return out
}
