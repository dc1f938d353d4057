package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/telemetry"
)

// The alert states: inactive (never fired, or cleared long since),
// active (firing), acknowledged (firing, and an operator has seen it: it
// stays quiet until its condition clears and returns), cleared (the
// condition went away after a firing).
const (
	StateInactive     = "inactive"
	StateActive       = "active"
	StateAcknowledged = "acknowledged"
	StateCleared      = "cleared"
)

// The severities.
const (
	Warning  = "warning"
	Critical = "critical"
)

// rule is one alert rule: its name, severity, and how it reads a check.
type rule struct {
	name, severity string
	// judge says whether the condition holds at this check, the value it
	// saw, the threshold and a sentence for people.
	judge func(c check) (bool, float64, float64, string)
}

// check is what one evaluation reads.
type check struct {
	now        time.Time
	cfg        config.Alerts
	state      State
	grew       int // checks in a row at which the queue grew
	steady     int // checks in a row at which it did not
	failures   ops.ErrorRates
	errorLines float64 // error log lines in the last hour
}

// rules are the original's five and store_unhealthy.
var rules = []rule{
	{"queue_growing", Warning, func(c check) (bool, float64, float64, string) {
		n := float64(c.cfg.QueueGrowingChecks)
		return float64(c.grew) >= n, float64(c.grew), n,
			fmt.Sprintf("the queue grew at %d checks in a row (depth %d)", c.grew, sum(c.state.QueuedByPriority))
	}},
	{"high_failure_rate", Warning, func(c check) (bool, float64, float64, string) {
		r := c.failures
		return r.Total >= c.cfg.FailureMinAttempts && r.FailureRatePct > c.cfg.FailureRatePct, r.FailureRatePct,
			c.cfg.FailureRatePct, fmt.Sprintf("%d of %d attempts failed in 5 minutes", r.Failed, r.Total)
	}},
	{"stuck_tasks", Critical, func(c check) (bool, float64, float64, string) {
		n := 0
		for _, since := range c.state.Active {
			if c.now.Sub(since) > c.cfg.StuckAfter {
				n++
			}
		}
		return n > 0, float64(n), c.cfg.StuckAfter.Seconds(),
			fmt.Sprintf("%d tasks assigned or working with no event for over %s", n, c.cfg.StuckAfter)
	}},
	{"no_agents_online", Critical, func(c check) (bool, float64, float64, string) {
		online := utilization(c.state.Agents).System.Online
		return online == 0, float64(online), 0, "no agent is online"
	}},
	{"high_error_rate", Warning, func(c check) (bool, float64, float64, string) {
		n := float64(c.cfg.ErrorLinesPerHour)
		return c.errorLines > n, c.errorLines, n, fmt.Sprintf("%.0f error log lines in the last hour", c.errorLines)
	}},
	{"store_unhealthy", Critical, func(c check) (bool, float64, float64, string) {
		return c.state.Store.Status == "unhealthy", float64(len(c.state.Store.Reasons)), 0,
			fmt.Sprintf("the event store is unhealthy: %v", c.state.Store.Reasons)
	}},
}

// alert is one rule's state.
type alert struct {
	ops.Alert
	lastFired time.Time
}

// alerter evaluates the rules and keeps each one's state.
type alerter struct {
	log logsink.Logger
	tel *telemetry.Emitter

	mu        sync.Mutex
	alerts    map[string]*alert
	lastDepth int
	checked   bool
	grew      int
	steady    int
	errors    []point // error lines at each check, the last hour
}

// newAlerter starts counting error lines at start, when the count is 0.
func newAlerter(log logsink.Logger, tel *telemetry.Emitter, start time.Time) *alerter {
	a := &alerter{log: log.Module("metrics"), tel: tel, alerts: map[string]*alert{},
		errors: []point{{at: start}}}
	for _, r := range rules {
		a.alerts[r.name] = &alert{Alert: ops.Alert{Rule: r.name, Severity: r.severity, State: StateInactive}}
	}
	return a
}

// list is every rule's alert, in the rules' order.
func (a *alerter) list() ops.Alerts {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := ops.Alerts{Alerts: make([]ops.Alert, 0, len(rules))}
	for _, r := range rules {
		out.Alerts = append(out.Alerts, a.alerts[r.name].Alert)
	}
	return out
}

// ErrNoAlert is an acknowledgement of a rule there is not; ErrNotFiring
// of one that is not active.
var (
	ErrNoAlert   = errors.New("no such alert rule")
	ErrNotFiring = errors.New("the alert is not active")
)

// acknowledge marks an active alert seen: it stays quiet until its
// condition clears and returns.
func (a *alerter) acknowledge(name, by string, now time.Time) (ops.Alert, int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	al, ok := a.alerts[name]
	if !ok {
		return ops.Alert{}, http.StatusNotFound, fmt.Errorf("acknowledge %q: %w", name, ErrNoAlert)
	}
	if al.State != StateActive {
		return al.Alert, http.StatusConflict, fmt.Errorf("acknowledge %s (%s): %w", name, al.State, ErrNotFiring)
	}
	at := now.UTC()
	al.State, al.AcknowledgedAt, al.AcknowledgedBy = StateAcknowledged, &at, by
	a.log.Warning().Str("rule", name).Str("by", by).Msg("alert acknowledged")
	a.tel.Emit("alert.acknowledge", nil, map[string]any{"rule": name, "severity": al.Severity, "by": by})
	return al.Alert, http.StatusOK, nil
}
