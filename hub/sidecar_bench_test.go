package hub

import (
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/logsink"
)

// BenchmarkSidecarOneAgent measures one agent working through a queue of
// short tasks with the real sidecar (in-process, exec mode, `true` per
// task): submit b.N tasks, then wait until all are completed. One op is
// one task. It reports tasks/s and the declines the run caused (each
// decline used to cost the agent a cooldown).
//
//	go test -run '^$' -bench BenchmarkSidecarOneAgent -benchtime 500x -count 5 ./hub
func BenchmarkSidecarOneAgent(b *testing.B) {
	h := startHubWith(b, "", 0, logsink.LevelWarning)
	startSidecar(b, h, "bench-sidecar", "true", nil)
	var mu sync.Mutex
	submitted := map[string]time.Time{}
	b.ResetTimer()
	start := time.Now()
	runSubmits(b, h, b.N, &mu, submitted)
	waitAllCompleted(b, h, b.N, time.Hour) // before the fix, each decline idled the agent 5 s
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
	b.ReportMetric(float64(declines(reclaims(b, h))), "declines")
}
