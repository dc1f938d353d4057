package telemetry_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/telemetry"
)

// BenchmarkWrite is the emitter's cost of one event as the hub writes it
// (an fsm.transition): encoding, the interest check, and its share of the
// TELEMETRY stream's batches, on a real server with nobody watching.
func BenchmarkWrite(b *testing.B) {
	br := brokertest.Start(b, time.Second)
	require.NoError(b, broker.OpenTelemetry(context.Background(), br.Conn, time.Hour, 1<<30))
	em := telemetry.New(br.Conn, "node", logsink.Nop(), telemetry.PublishWhenWatched(br.Server.Watched))
	at := time.Now()
	done := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	em.Later(func(w telemetry.Writer) {
		defer close(done)
		for range b.N {
			w.Event(at, "fsm.transition").Num("duration_ms", 12.5).Str("agent_id", "agent-7").
				Str("from", "idle").Str("to", "assigned").Str("task_id", "task-01J9Z6Q3W8").
				Str("request_id", "req-01J9Z6Q3W8").Send()
		}
	})
	<-done
	em.Stop()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/event")
}

// cpuTime is the CPU time the process has used, user and system: the
// emitter and the server that stores its batches.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
