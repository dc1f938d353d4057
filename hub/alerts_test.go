package hub

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol/ops"
)

// alertHub is a hub on an injected clock whose timers never move on their
// own (leases, the reaper), with the alert thresholds small.
func alertHub(t *testing.T, paused bool) (*testHub, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	h := startHubOpts(t, "", logsink.LevelInfo, hubOpts{now: clock.Now, paused: paused}, func(cfg *config.Hub) {
		cfg.Agents.ReapAfter, cfg.Agents.StuckThreshold = 1000*time.Hour, 1000*time.Hour
		cfg.Agents.AcceptanceTimeout = 1000 * time.Hour
		cfg.Alerts = config.Alerts{CheckInterval: time.Hour, QueueGrowingChecks: 2, FailureRatePct: 50,
			FailureMinAttempts: 2, StuckAfter: 5 * time.Minute, ErrorLinesPerHour: 3, Cooldown: 5 * time.Minute}
	})
	return h, clock
}

// checkAlerts lets the telemetry in flight reach the metrics, then checks.
func checkAlerts(t *testing.T, h *testHub) {
	t.Helper()
	require.NoError(t, h.tel.Flush(context.Background()))
	h.metrics.CheckAlerts(context.Background())
}

// alertState reads one rule's state over HTTP.
func alertState(t *testing.T, h *testHub, rule string) string {
	t.Helper()
	code, out := h.do(t, http.MethodGet, "/api/alerts", "", "")
	require.Equal(t, http.StatusOK, code)
	for _, a := range out["alerts"].([]any) {
		if a := a.(map[string]any); a["rule"] == rule {
			return a["state"].(string)
		}
	}
	t.Fatalf("no alert %s in %v", rule, out)
	return ""
}

// fireAckClear drives one rule through its life: fire, acknowledge (and
// stay quiet while the condition lasts), clear; the log says each step.
func fireAckClear(t *testing.T, h *testHub, rule string, fire, clear func()) {
	t.Helper()
	fire()
	require.Equal(t, "active", alertState(t, h, rule))
	code, out := h.do(t, http.MethodPost, "/api/alerts/"+rule+"/acknowledge", h.token, "")
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, "acknowledged", out["state"])
	code, out = h.do(t, http.MethodPost, "/api/alerts/"+rule+"/acknowledge", h.token, "")
	require.Equal(t, http.StatusConflict, code, out)
	require.Equal(t, "alert_not_active", out["error"])
	checkAlerts(t, h)
	require.Equal(t, "acknowledged", alertState(t, h, rule), "an acknowledged alert stays quiet while it lasts")
	clear()
	require.Equal(t, "cleared", alertState(t, h, rule))
	logs := h.logs.String()
	for _, msg := range []string{`"message":"alert fired: `, `"message":"alert acknowledged"`, `"message":"alert cleared"`} {
		require.Contains(t, logs, msg, rule)
	}
	require.Contains(t, logs, `"rule":"`+rule+`"`)
}

// Each rule fires, is acknowledged and clears, on an injected clock.
func TestEachAlertFiresIsAcknowledgedAndClears(t *testing.T) {
	t.Parallel()
	t.Run("no_agents_online", func(t *testing.T) {
		t.Parallel()
		h, _ := alertHub(t, true)
		fireAckClear(t, h, "no_agents_online", func() { checkAlerts(t, h) }, func() {
			newTestAgent(t, h, "a1", nil, ignore)
			checkAlerts(t, h)
		})
		require.Contains(t, h.logs.String(), `"severity":"error"`, "a critical alert logs an error")
	})
	t.Run("queue_growing", func(t *testing.T) {
		t.Parallel()
		h, clock := alertHub(t, true)
		grow := func(times int) {
			for range times {
				h.submit(t, `{"description":"more"}`)
				checkAlerts(t, h)
			}
		}
		// fireAckClear's quiet check is the first without growth: still
		// firing (hysteresis); the second clears.
		fireAckClear(t, h, "queue_growing", func() { checkAlerts(t, h); grow(2) }, func() { checkAlerts(t, h) })
		grow(2)
		require.Equal(t, "cleared", alertState(t, h, "queue_growing"), "a warning waits out its cooldown")
		clock.Advance(5 * time.Minute)
		grow(1)
		require.Equal(t, "active", alertState(t, h, "queue_growing"))
	})
	t.Run("high_failure_rate", func(t *testing.T) {
		t.Parallel()
		h, clock := alertHub(t, false)
		newTestAgent(t, h, "a1", nil, failAtOnce)
		fireAckClear(t, h, "high_failure_rate", func() {
			for range 2 {
				waitStatus(t, h, h.submit(t, `{"description":"doomed","max_retries":0}`), domain.StatusDeadLetter)
			}
			checkAlerts(t, h)
		}, func() {
			clock.Advance(6 * time.Minute) // out of the 5-minute window
			checkAlerts(t, h)
		})
	})
	t.Run("stuck_tasks", func(t *testing.T) {
		t.Parallel()
		h, clock := alertHub(t, false)
		newTestAgent(t, h, "a1", nil, ignore)
		id := h.submit(t, `{"description":"never accepted"}`)
		waitStatus(t, h, id, domain.StatusAssigned)
		checkAlerts(t, h)
		require.Equal(t, "inactive", alertState(t, h, "stuck_tasks"))
		fireAckClear(t, h, "stuck_tasks", func() {
			clock.Advance(6 * time.Minute)
			checkAlerts(t, h)
		}, func() {
			code, out := h.do(t, http.MethodPost, "/api/tasks/"+id+"/cancel", h.token, `{"reason":"stuck"}`)
			require.Equal(t, http.StatusOK, code, out)
			checkAlerts(t, h)
		})
	})
	t.Run("high_error_rate", func(t *testing.T) {
		t.Parallel()
		h, clock := alertHub(t, true)
		newTestAgent(t, h, "a1", nil, ignore) // no critical alert's own error line in the count
		checkAlerts(t, h)
		fireAckClear(t, h, "high_error_rate", func() {
			for range 4 {
				h.log.Error().Msg("something broke")
			}
			checkAlerts(t, h)
		}, func() {
			clock.Advance(61 * time.Minute)
			checkAlerts(t, h)
		})
	})
	t.Run("store_unhealthy", func(t *testing.T) {
		t.Parallel()
		h, _ := alertHub(t, true)
		fireAckClear(t, h, "store_unhealthy", func() {
			h.Store().MarkFull("test: the disk is full")
			checkAlerts(t, h)
		}, func() {
			h.Store().ClearFull()
			checkAlerts(t, h)
		})
	})
}

// An unknown rule cannot be acknowledged; the list names every rule.
func TestAlertsListEveryRule(t *testing.T) {
	t.Parallel()
	h, _ := alertHub(t, true)
	code, out := h.do(t, http.MethodGet, "/api/alerts", "", "")
	require.Equal(t, http.StatusOK, code)
	var rules []string
	for _, a := range out["alerts"].([]any) {
		rules = append(rules, a.(map[string]any)["rule"].(string)+"/"+a.(map[string]any)["state"].(string))
	}
	require.Equal(t, "queue_growing/inactive high_failure_rate/inactive stuck_tasks/inactive "+
		"no_agents_online/inactive high_error_rate/inactive store_unhealthy/inactive", strings.Join(rules, " "))
	code, out = h.do(t, http.MethodPost, "/api/alerts/moon_full/acknowledge", h.token, "")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "alert_not_found", out["error"])
}

// The log tail reads the log sink's file: a line the hub wrote shows, as
// the JSON object the file holds, over HTTP and NATS.
func TestLogTailReadsTheLogFile(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	h.log.Notice().Str("marker", "tail-me").Msg("a line for the tail")
	send := transports(t, h)
	for name, call := range map[string]func() (int, map[string]any){
		"http": func() (int, map[string]any) {
			return send["http"](ops.OpLogTail, map[string]string{"lines": "1000"}, "")
		},
		"nats": func() (int, map[string]any) { return send["nats"](ops.OpLogTail, nil, `{"lines":1000}`) },
	} {
		require.Eventually(t, func() bool {
			code, out := call()
			require.Equal(t, http.StatusOK, code, "%s: %v", name, out)
			for _, l := range out["lines"].([]any) {
				if l.(map[string]any)["marker"] == "tail-me" {
					return true
				}
			}
			return false
		}, 15*time.Second, 20*time.Millisecond, name)
	}
	code, out := h.do(t, http.MethodGet, "/api/admin/logs/tail?lines=2", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, out["lines"], 2)
}
