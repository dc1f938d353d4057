package hub

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// scrape reads GET /metrics and parses it with Prometheus's own parser.
func scrape(t *testing.T, h *testHub) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(h.HTTPURL() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, ops.TextFormat, resp.Header.Get("Content-Type"))
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return families
}

// value is the value of family's series with the labels given.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := families[name]
	require.True(t, ok, "no metric %s", name)
	for _, m := range f.Metric {
		if hasLabels(m, labels) {
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.Label {
			found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
		}
		if !found {
			return false
		}
	}
	return true
}

// buckets are a histogram's cumulative counts by upper bound.
func buckets(t *testing.T, families map[string]*dto.MetricFamily, name, priority string) map[float64]uint64 {
	t.Helper()
	for _, m := range families[name].GetMetric() {
		if hasLabels(m, []string{"priority", priority}) {
			out := map[float64]uint64{}
			for _, b := range m.Histogram.Bucket {
				out[b.GetUpperBound()] = b.GetCumulativeCount()
			}
			return out
		}
	}
	t.Fatalf("no histogram %s{priority=%q}", name, priority)
	return nil
}

// A scripted day with an injected clock: ten tasks queued together, run
// one at a time by one agent, the k-th for k×100 ms, then one that fails
// for good. The histograms of /metrics hold exactly those durations, and
// the snapshot's window percentiles are theirs; its cumulative ones are
// the histogram's, interpolated as histogram_quantile does.
func TestMetricsOfAScriptedScenario(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	h := startHubClock(t, "", logsink.LevelInfo, clock.Now, func(cfg *config.Hub) {
		cfg.Agents.ReapAfter, cfg.Agents.StuckThreshold = 1000*time.Hour, 1000*time.Hour
		cfg.Agents.AcceptanceTimeout = 1000 * time.Hour
	})
	for range 10 {
		h.submit(t, `{"description":"step","priority":"high"}`)
	}
	clock.Advance(time.Second) // queued a second when the agent comes
	assigned := make(chan protocol.Assignment, 16)
	agent := newTestAgent(t, h, "worker", nil, func(a *testAgent, as protocol.Assignment) {
		a.call(broker.VerbAccept, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation})
		assigned <- as
	})
	for k := 1; k <= 10; k++ {
		as := <-assigned
		waitStatus(t, h, as.TaskID, domain.StatusWorking)
		clock.Advance(time.Duration(k) * 100 * time.Millisecond)
		require.Equal(t, 200, agent.call(broker.VerbComplete, protocol.Complete{TaskID: as.TaskID, Generation: as.Generation}))
		waitStatus(t, h, as.TaskID, domain.StatusCompleted)
	}
	require.NoError(t, h.tel.Flush(context.Background()))
	families := scrape(t, h)

	require.Equal(t, 10.0, value(t, families, "agentcom_tasks_submitted_total", "priority", "high"))
	require.Equal(t, 10.0, value(t, families, "agentcom_tasks_completed_total", "priority", "high"))
	require.Equal(t, map[float64]uint64{0.005: 0, 0.01: 0, 0.025: 0, 0.05: 0, 0.1: 1, 0.25: 2, 0.5: 5, 1: 10, 2.5: 10,
		5: 10, 10: 10, 30: 10, 60: 10, 120: 10, 300: 10, 600: 10, 1800: 10, 3600: 10, math.Inf(1): 10},
		buckets(t, families, "agentcom_task_run_seconds", "high"))
	// Waits: 1 s for the first, then 1 s plus the runs before it.
	wait := buckets(t, families, "agentcom_task_queue_wait_seconds", "high")
	require.Equal(t, uint64(1), wait[1])
	require.Equal(t, uint64(6), wait[2.5], "1.1, 1.3, 1.6, 2.0, 2.5 s")
	require.Equal(t, uint64(10), wait[10])
	require.Equal(t, 1.0, value(t, families, "agentcom_agents", "state", "idle"))
	require.Equal(t, 0.0, value(t, families, "agentcom_queue_depth", "priority", "high"))
	require.Equal(t, 10.0, value(t, families, "agentcom_tasks", "status", "completed"))
	require.Equal(t, 1.0, value(t, families, "agentcom_store_healthy", "status", "healthy"))
	require.Positive(t, value(t, families, "agentcom_scheduler_passes_total"))
	require.Positive(t, value(t, families, "agentcom_log_lines_total", "level", "info"))
	require.Contains(t, families, "go_goroutines")
	require.Contains(t, families, "process_resident_memory_bytes")

	snap := snapshot(t, h)
	require.Equal(t, ops.Latency{Count: 10, MinMS: 100, MaxMS: 1000, MeanMS: 550, P50MS: 500, P90MS: 900, P99MS: 1000},
		snap.TaskLatency.Window)
	require.Equal(t, ops.Latency{Count: 10, MinMS: 1000, MaxMS: 5500, MeanMS: 2650, P50MS: 2000, P90MS: 4600, P99MS: 5500},
		snap.QueueWait.Window)
	cum := snap.TaskLatency.Cumulative
	require.Equal(t, 10, cum.Count)
	require.InDelta(t, 500, cum.P50MS, 1e-6, "rank 5 of (0.25, 0.5]: 0.25 + 3/3 × 0.25")
	require.InDelta(t, 900, cum.P90MS, 1e-6, "rank 9 of (0.5, 1]: 0.5 + 4/5 × 0.5")
	require.InDelta(t, 990, cum.P99MS, 1e-6)
	require.InDelta(t, 550, cum.MeanMS, 1e-6)
	require.InDelta(t, 2200, snap.QueueWait.Cumulative.P50MS, 1e-6, "rank 5 of (1, 2.5]: 1 + 4/5 × 1.5")
	require.Equal(t, ops.ErrorRates{Total: 10, Completed: 10}, snap.ErrorRates.Window)
	require.Equal(t, ops.Utilization{Total: 1, Online: 1, Idle: 1, Slots: 1}, snap.AgentUtilization.System)
	require.Equal(t, "healthy", snap.StoreHealth.Status)
	require.Zero(t, snap.StoreHealth.Lag)

	// One that fails for good: a failure, a dead letter, a failure rate.
	failing := h.submit(t, `{"description":"doomed","max_retries":0}`)
	as := <-assigned
	require.Equal(t, failing, as.TaskID)
	require.Equal(t, 200, agent.call(broker.VerbFail, protocol.Fail{TaskID: as.TaskID, Generation: as.Generation, Error: "no"}))
	waitStatus(t, h, failing, domain.StatusDeadLetter)
	require.NoError(t, h.tel.Flush(context.Background()))
	families = scrape(t, h)
	require.Equal(t, 1.0, value(t, families, "agentcom_tasks_failed_total", "priority", "normal"))
	require.Equal(t, 1.0, value(t, families, "agentcom_tasks_dead_lettered_total", "priority", "normal"))
	rates := snapshot(t, h).ErrorRates
	require.Equal(t, 11, rates.Window.Total)
	require.InDelta(t, 100.0/11, rates.Window.FailureRatePct, 1e-9)
	require.Equal(t, rates.Window.Failed, rates.Cumulative.Failed)
}

func snapshot(t *testing.T, h *testHub) ops.MetricsSnapshot {
	t.Helper()
	resp, err := http.Get(h.HTTPURL() + "/api/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(raw))
	var s ops.MetricsSnapshot
	require.NoError(t, json.NewDecoder(strings.NewReader(string(raw))).Decode(&s))
	return s
}
