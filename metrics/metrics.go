// Package metrics holds the operators' numbers (docs/metrics.md): the
// Prometheus collectors of GET /metrics and the JSON snapshot of GET
// /api/metrics. Counters and histograms are fed only by the hub's
// telemetry events, through an in-process handler; gauges of what is true
// now (queue depth, agents by state, store size and lag) are read at
// scrape time from the projections, which the same events built. The
// clock is injected.
package metrics

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/telemetry"
)

// Window is the span of the snapshot's window figures, as the original's.
const Window = 5 * time.Minute

// durationBuckets are the histograms' upper bounds in seconds: from a
// queue that hands tasks out at once to tasks that run for an hour.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// Params are what the metrics read.
type Params struct {
	// State reads what is true now, for the gauges and the snapshot.
	State func(ctx context.Context) State
	// LogLines counts the hub's log lines by level so far.
	LogLines func() map[string]uint64
	// Dropped counts the telemetry events that never reached the stream.
	Dropped func() uint64
	// Alerts are the alert thresholds in force (the run-time settings).
	Alerts func() config.Alerts
	// Log and Telemetry receive each alert's firing, clearing and
	// acknowledgement.
	Log       logsink.Logger
	Telemetry *telemetry.Emitter
	Now       func() time.Time
}

// Metrics are the collectors and the snapshot's windows.
type Metrics struct {
	p   Params
	reg *prometheus.Registry

	tasks           map[string]*prometheus.CounterVec // by what happened, each by priority
	wait, run       *timing                           // time in queue, run time
	schedulerPasses prometheus.Counter
	rateLimited     *prometheus.CounterVec

	mu     sync.Mutex
	ends   outcomes
	total  map[string]int // completed, failed, dead_letter since start
	points []point        // a minute apart, the last hour

	alerts *alerter
	rearm  chan struct{}
}

// timing is one kind of duration: its histogram (by priority), the
// telemetry measurement it reads, the window's samples, and the least and
// greatest since start (seen: any yet). Under Metrics.mu but the histogram.
type timing struct {
	hist        *prometheus.HistogramVec
	measurement string
	window      durations
	seen        bool
	least, most float64
}

// New registers every collector; attach Handle to the telemetry emitter.
func New(p Params) *Metrics {
	if p.Now == nil {
		p.Now = time.Now
	}
	m := &Metrics{p: p, reg: prometheus.NewRegistry(), total: map[string]int{},
		alerts: newAlerter(p.Log, p.Telemetry, p.Now()),
		rearm:  make(chan struct{}, 1)}
	m.tasks = map[string]*prometheus.CounterVec{}
	for _, what := range []string{"submitted", "completed", "failed", "dead_lettered", "reclaimed"} {
		m.tasks[what] = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentcom_tasks_" + what + "_total",
			Help: "Tasks " + strings.ReplaceAll(what, "_", "-") + ", by priority (a failure is one attempt's)."},
			[]string{"priority"})
		m.reg.MustRegister(m.tasks[what])
	}
	m.wait = &timing{measurement: "wait_ms", hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "agentcom_task_queue_wait_seconds", Help: "Time from queued to assigned, per assignment.",
		Buckets: durationBuckets}, []string{"priority"})}
	m.run = &timing{measurement: "duration_ms", hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "agentcom_task_run_seconds", Help: "Time from assigned to completed, per completion.",
		Buckets: durationBuckets}, []string{"priority"})}
	m.schedulerPasses = prometheus.NewCounter(prometheus.CounterOpts{Name: "agentcom_scheduler_passes_total",
		Help: "Passes the scheduler made."})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentcom_rate_limited_total",
		Help: "Requests refused over a rate limit (429), by tier."}, []string{"tier"})
	m.reg.MustRegister(m.wait.hist, m.run.hist, m.schedulerPasses, m.rateLimited, stateCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Text is every metric in the Prometheus text exposition format.
func (m *Metrics) Text() (string, error) {
	families, err := m.reg.Gather()
	if err != nil {
		return "", fmt.Errorf("gather metrics: %w", err)
	}
	var b strings.Builder
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return "", fmt.Errorf("encode metric %s: %w", f.GetName(), err)
		}
	}
	return b.String(), nil
}

// counted are the events the metrics count. The emitter decodes an event
// for in-process handlers only when one takes its name, so the metrics
// take these alone, not every event (accept, progress, fsm.transition and
// scheduler.match are most of a busy hub's events).
var counted = []string{"task.submit", "task.assign", "task.complete", "task.fail", "task.dead_letter",
	"task.reclaim", "scheduler.attempt", "rate.limited"}

// Attach feeds the metrics from the events of e they count.
func (m *Metrics) Attach(e *telemetry.Emitter) {
	for _, name := range counted {
		e.Attach("metrics:"+name, name, m.Handle)
	}
}

// Handle counts one telemetry event.
func (m *Metrics) Handle(ev telemetry.Event) {
	prio, _ := ev.Metadata["priority"].(string)
	switch ev.Event {
	case "task.submit":
		m.tasks["submitted"].WithLabelValues(prio).Inc()
	case "task.assign":
		m.observe(m.wait, prio, ev)
	case "task.complete":
		m.tasks["completed"].WithLabelValues(prio).Inc()
		m.observe(m.run, prio, ev)
		m.ended(ev.Time, "completed")
	case "task.fail":
		m.tasks["failed"].WithLabelValues(prio).Inc()
		m.ended(ev.Time, "failed")
	case "task.dead_letter":
		m.tasks["dead_lettered"].WithLabelValues(prio).Inc()
		m.ended(ev.Time, "dead_letter")
	case "task.reclaim":
		m.tasks["reclaimed"].WithLabelValues(prio).Inc()
	case "scheduler.attempt":
		m.schedulerPasses.Inc()
	case "rate.limited":
		tier, _ := ev.Metadata["tier"].(string)
		m.rateLimited.WithLabelValues(tier).Add(max(ev.Measurements["count"], 1))
	}
}

// observe records a duration event: its histogram, window and extremes.
func (m *Metrics) observe(t *timing, prio string, ev telemetry.Event) {
	ms := ev.Measurements[t.measurement]
	t.hist.WithLabelValues(prio).Observe(ms / 1000)
	m.mu.Lock()
	defer m.mu.Unlock()
	t.window.add(ev.Time, ms)
	if !t.seen {
		t.seen, t.least, t.most = true, ms, ms
	}
	t.least, t.most = min(t.least, ms), max(t.most, ms)
}

func (m *Metrics) ended(at time.Time, kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ends.add(at, kind)
	m.total[kind]++
}
