package hub

import (
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// dashboardReads are what the dashboard's page reads when it loads, as
// its script asks for them (at once).
var dashboardReads = []string{"/api/agents", "/api/tasks?status=queued&limit=100",
	"/api/tasks?status=completed&order=updated&limit=10", "/api/tasks?status=dead_letter&limit=100",
	"/api/metrics", "/api/alerts", "/api/tasks/stats"}

// BenchmarkDashboardLoad times the dashboard's load with 10,000 tasks
// queued: the page, then its reads in parallel, as the browser does them
// (the page's own drawing is not in it). Reports ms/load.
func BenchmarkDashboardLoad(b *testing.B) {
	h := startHubWith(b, "", time.Second, logsink.LevelInfo)
	nc := dialN(b, h.NATSURL(), h.token, 1)[0]
	body := []byte(batchOf(ops.MaxBatchSubmit, func(int) string { return string(benchBody) }))
	for range 10_000 / ops.MaxBatchSubmit {
		resp, err := nc.Request(broker.Command(broker.CmdTaskSubmitBatch), body, time.Minute)
		if err != nil || resp.Header.Get(protocol.HeaderStatus) != "201" {
			b.Fatalf("batch submit: %v", err)
		}
	}
	get := func(path string) {
		resp, err := http.Get(h.HTTPURL() + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		get("/dashboard")
		var wg sync.WaitGroup
		for _, path := range dashboardReads {
			wg.Go(func() { get(path) })
		}
		wg.Wait()
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/load")
}
