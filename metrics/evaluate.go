package metrics

import (
	"context"
	"time"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/protocol/ops"
)

// CheckAlerts evaluates every rule now; RunAlerts calls it every
// alerts.check_interval, tests with their own clock.
func (m *Metrics) CheckAlerts(ctx context.Context) {
	c := check{now: m.p.Now(), cfg: m.p.Alerts(), state: m.p.State(ctx)}
	m.mu.Lock()
	c.failures = rates(m.ends.since(c.now.Add(-Window)))
	m.mu.Unlock()
	m.alerts.evaluate(c, m.p.LogLines()["error"])
}

// RunAlerts checks the rules every alerts.check_interval until ctx ends;
// Rearm starts the wait again, with the interval then in force.
func (m *Metrics) RunAlerts(ctx context.Context) {
	for {
		every := m.p.Alerts().CheckInterval
		if every <= 0 {
			every = config.AlertDefaults.CheckInterval
		}
		wait := time.NewTimer(every)
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-m.rearm:
			wait.Stop()
		case <-wait.C:
			m.CheckAlerts(ctx)
		}
	}
}

// Rearm makes RunAlerts wait the interval in force from now: after a
// run-time change of the alert settings.
func (m *Metrics) Rearm() {
	select {
	case m.rearm <- struct{}{}:
	default:
	}
}

// Alerts is every rule's alert.
func (m *Metrics) Alerts() ops.Alerts { return m.alerts.list() }

// Acknowledge marks an active alert seen; it returns the alert and the
// status that answers it (404 for no such rule, 409 for one not active).
func (m *Metrics) Acknowledge(rule, by string) (ops.Alert, int, error) {
	return m.alerts.acknowledge(rule, by, m.p.Now())
}

// evaluate moves every rule's alert on by one check.
func (a *alerter) evaluate(c check, errorLines uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.trackQueue(sum(c.state.QueuedByPriority))
	a.errors = append(a.errors, point{at: c.now, errorLines: errorLines})
	for len(a.errors) > 1 && c.now.Sub(a.errors[0].at) > time.Hour {
		a.errors = a.errors[1:]
	}
	c.grew, c.steady, c.errorLines = a.grew, a.steady, float64(errorLines-a.errors[0].errorLines)
	for _, r := range rules {
		on, value, threshold, msg := r.judge(c)
		al := a.alerts[r.name]
		al.Value, al.Threshold = value, threshold
		firing := al.State == StateActive || al.State == StateAcknowledged
		switch {
		case !firing && on && a.mayFire(al, c):
			a.fire(al, c.now, msg)
		case firing && !on && a.clears(r, c):
			a.clear(al, c.now)
		}
	}
}

// trackQueue counts the checks in a row at which the queue grew, and at
// which it did not.
func (a *alerter) trackQueue(depth int) {
	switch {
	case !a.checked:
	case depth > a.lastDepth:
		a.grew, a.steady = a.grew+1, 0
	default:
		a.grew, a.steady = 0, a.steady+1
	}
	a.checked, a.lastDepth = true, depth
}

// mayFire keeps a warning rule quiet for the cooldown after it last
// fired; a critical rule fires whenever its condition returns.
func (a *alerter) mayFire(al *alert, c check) bool {
	return al.Severity == Critical || al.lastFired.IsZero() || c.now.Sub(al.lastFired) >= c.cfg.Cooldown
}

// clears tells whether a firing rule's condition has gone: queue_growing
// only after as many checks without growth as it took to fire
// (hysteresis), the others at once.
func (a *alerter) clears(r rule, c check) bool {
	if r.name == "queue_growing" {
		return c.steady >= c.cfg.QueueGrowingChecks
	}
	return true
}

func (a *alerter) fire(al *alert, now time.Time, msg string) {
	at := now.UTC()
	al.State, al.Message, al.FiredAt, al.lastFired = StateActive, msg, &at, now
	al.AcknowledgedAt, al.AcknowledgedBy, al.ClearedAt = nil, "", nil
	ev := a.log.Warning()
	if al.Severity == Critical {
		ev = a.log.Error()
	}
	ev.Str("rule", al.Rule).Str("alert_severity", al.Severity).Float64("value", al.Value).Float64("threshold", al.Threshold).
		Msg("alert fired: " + msg)
	a.tel.Emit("alert.fire", map[string]float64{"value": al.Value, "threshold": al.Threshold},
		map[string]any{"rule": al.Rule, "severity": al.Severity, "message": msg})
}

func (a *alerter) clear(al *alert, now time.Time) {
	at := now.UTC()
	al.State, al.ClearedAt = StateCleared, &at
	a.log.Warning().Str("rule", al.Rule).Str("alert_severity", al.Severity).Msg("alert cleared")
	a.tel.Emit("alert.clear", map[string]float64{"duration_ms": float64(now.Sub(*al.FiredAt).Milliseconds())},
		map[string]any{"rule": al.Rule, "severity": al.Severity})
}
