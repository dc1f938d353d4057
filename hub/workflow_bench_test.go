package hub

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol/ops"
)

// BenchmarkDependencyRelease times what releasing a dependent costs: from
// its last dependency's completion to its assignment (both as the hub's
// events record them), with an agent that completes each task at once.
// chain: one iteration is a batch of 1,000 tasks, each depending on the one
// before (999 releases); fan_in: one iteration is a batch of 1,000 whose
// last task depends on the other 999 (one release). p50 and p99 are over every release of the run.
func BenchmarkDependencyRelease(b *testing.B) {
	const n = 1000
	for _, shape := range []string{"chain", "fan_in"} {
		b.Run(shape, func(b *testing.B) {
			h := startHubCfg(b, "", logsink.LevelWarning, func(c *config.Hub) { c.Agents.RequestRate = 0 })
			newTestAgent(b, h, "worker", nil, completeAtOnce)
			var lat []float64
			b.ResetTimer()
			for range b.N {
				ids := submitShape(b, h, shape, n)
				last := ids[len(ids)-1]
				waitDone(b, h, last)
				lat = append(lat, releaseLatencies(b, h, shape, ids)...)
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(lat[len(lat)/2], "p50-ms")
			b.ReportMetric(lat[min(len(lat)-1, len(lat)*99/100)], "p99-ms")
			b.ReportMetric(float64(len(lat)), "releases")
		})
	}
}

// submitShape submits one chain or fan-in as a batch and returns the ids
// in order (a fan-in's dependent last).
func submitShape(b *testing.B, h *testHub, shape string, n int) []string {
	tasks := make([]map[string]any, 0, n)
	for i := range n {
		t := map[string]any{"ref": fmt.Sprint(i), "description": "step"}
		if shape == "chain" && i > 0 {
			t["depends_on"] = []string{fmt.Sprint(i - 1)}
		}
		tasks = append(tasks, t)
	}
	if shape == "fan_in" { // the last of the batch waits on the other 999
		all := make([]string, n-1)
		for i := range all {
			all[i] = fmt.Sprint(i)
		}
		tasks[n-1]["depends_on"] = all
	}
	body, err := json.Marshal(map[string]any{"tasks": tasks})
	if err != nil {
		b.Fatal(err)
	}
	r := h.api.SubmitBatch(b.Context(), "admin", body)
	out, ok := r.Body.(ops.SubmittedBatch)
	if !ok {
		b.Fatalf("batch submit: %d %+v", r.Status, r.Body)
	}
	ids := make([]string, len(out.Tasks))
	for i, t := range out.Tasks {
		ids[i] = t.TaskID
	}
	return ids
}

func waitDone(b *testing.B, h *testHub, id string) {
	require.Eventually(b, func() bool {
		t, _, ok := h.views.Tasks.Get(id)
		return ok && t.Status == domain.StatusCompleted
	}, 5*time.Minute, time.Millisecond, "task %s never completed", id)
}

// releaseLatencies are, per dependent, the milliseconds from its last
// dependency's completion to its assignment.
func releaseLatencies(b *testing.B, h *testHub, shape string, ids []string) []float64 {
	at := func(id, event string) time.Time {
		t, _, _ := h.views.Tasks.Get(id)
		for _, e := range t.History {
			if e.Event == event {
				return e.At
			}
		}
		b.Fatalf("task %s has no %s", id, event)
		return time.Time{}
	}
	var out []float64
	for i, id := range ids {
		t, _, _ := h.views.Tasks.Get(id)
		deps := t.Deps()
		if len(deps) == 0 || (shape == "fan_in" && i != len(ids)-1) {
			continue
		}
		var last time.Time
		for _, d := range deps {
			if c := at(d, domain.TypeTaskCompleted); c.After(last) {
				last = c
			}
		}
		out = append(out, float64(at(id, domain.TypeTaskAssigned).Sub(last).Microseconds())/1000)
	}
	return out
}
