package hub

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// benchAgents is how many in-process agents take work in BenchmarkLifecycle.
const benchAgents = 8

// BenchmarkLifecycle measures whole task lifecycles: submit, assign (the
// scheduler), push, accept, complete, each a durable event, with
// in-process agents that speak the sidecar protocol over real NATS
// connections. One op is one task from submit to completed. It reports
// tasks/s and the submit-to-assignment latency (p50, p99, as seen by the
// agent receiving the push), beside raw JetStream publishes in the same
// run.
func BenchmarkLifecycle(b *testing.B) {
	for _, sync := range []struct {
		name     string
		interval time.Duration
	}{{"sync=always", 0}, {"sync=1s", time.Second}} {
		b.Run(sync.name+"/lifecycle", func(b *testing.B) { benchLifecycle(b, sync.interval) })
		b.Run(sync.name+"/assign-latency", func(b *testing.B) { benchAssignLatency(b, sync.interval) })
		b.Run(sync.name+"/raw-js-inproc", func(b *testing.B) { benchRaw(b, sync.interval, false) })
	}
}

func benchLifecycle(b *testing.B, interval time.Duration) {
	benchLifecycleWith(b, startHubWith(b, "", interval, logsink.LevelWarning))
}

// BenchmarkTelemetryCost measures what telemetry costs whole task
// lifecycles, with the default store.sync (always) and with 1s, where the
// store is cheapest and any other cost shows most: two hubs, telemetry on
// and off, take turns (benchCost).
func BenchmarkTelemetryCost(b *testing.B) {
	for _, sync := range []struct {
		name     string
		interval time.Duration
	}{{"sync=always", 0}, {"sync=1s", time.Second}} {
		b.Run(sync.name, func(b *testing.B) { benchTelemetryCost(b, sync.interval) })
	}
}

func benchTelemetryCost(b *testing.B, syncInterval time.Duration) {
	benchCost(b, func(on bool) *testHub {
		return startHubCfg(b, "", logsink.LevelWarning, func(c *config.Hub) {
			c.Store.SyncInterval = syncInterval
			c.Telemetry.Enabled = on
		})
	})
}

// BenchmarkLoggingCost measures what logging costs whole task lifecycles,
// as BenchmarkTelemetryCost does telemetry: one hub logs at info (a line
// per submit, assignment and batch of reports, each also a LOGS stream
// record), the other at error (none).
func BenchmarkLoggingCost(b *testing.B) {
	for _, sync := range []struct {
		name     string
		interval time.Duration
	}{{"sync=always", 0}, {"sync=1s", time.Second}} {
		b.Run(sync.name, func(b *testing.B) {
			benchCost(b, func(on bool) *testHub {
				level := logsink.LevelError
				if on {
					level = logsink.LevelInfo
				}
				return startHubCfg(b, "", level, func(c *config.Hub) { c.Store.SyncInterval = sync.interval })
			})
		})
	}
}

// benchCost runs the same lifecycles on two hubs side by side, start(true)
// with the part measured and start(false) without it. They take turns
// doing slices of costSlice lifecycles, the order alternating, until each
// has done b.N: the machine's speed drifts, and turns this short put both
// sides through the same drift. It reports both rates and cost-% (1 -
// on/off); ns/op is a task on each side. Use -count and take the median.
func benchCost(b *testing.B, start func(on bool) *testHub) {
	b.StopTimer() // the timer counts the lifecycles only, not the hubs' starts
	rigs := map[bool]*rig{}
	for _, on := range []bool{true, false} {
		rigs[on] = newRig(b, start(on))
	}
	took, cpu := map[bool]time.Duration{}, map[bool]time.Duration{}
	for turn, left := 0, b.N; left > 0; turn++ {
		n := min(left, costSlice)
		for _, on := range []bool{turn%2 == 0, turn%2 != 0} {
			b.StartTimer()
			start, cpu0 := time.Now(), cpuTime()
			rigs[on].run(b, n)
			// The turn's telemetry is published and stored before the
			// other side's turn starts: its tail counts against it.
			if tel := rigs[on].h.tel; tel != nil {
				require.NoError(b, tel.Flush(context.Background()))
			}
			took[on], cpu[on] = took[on]+time.Since(start), cpu[on]+cpuTime()-cpu0
			b.StopTimer()
		}
		left -= n
	}
	for on, side := range map[bool]string{true: "on", false: "off"} {
		b.ReportMetric(float64(b.N)/took[on].Seconds(), "tasks/s-"+side)
		b.ReportMetric(float64(cpu[on].Microseconds())/float64(b.N), "cpu-µs/task-"+side)
	}
	b.ReportMetric(100*(1-took[false].Seconds()/took[true].Seconds()), "cost-%")
	if tel := rigs[true].h.tel; tel != nil { // a cheap emitter that dropped events would be no figure
		b.ReportMetric(float64(tel.Dropped()), "dropped-events")
	}
}

// costSlice is how many lifecycles a side of BenchmarkTelemetryCost does
// in one turn.
const costSlice = 500

func benchLifecycleWith(b *testing.B, h *testHub) {
	r := newRig(b, h)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	r.run(b, b.N)
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/task")
	if h.tel != nil { // a cheap emitter that dropped events would be no figure
		b.ReportMetric(float64(h.tel.Dropped()), "dropped-events")
	}
	reportLatency(b, r.submitted, r.assigned)
}

// rig is a hub with benchAgents in-process agents that complete each task
// at once, noting when each task was submitted and assigned.
type rig struct {
	h                   *testHub
	mu                  sync.Mutex
	submitted, assigned map[string]time.Time
	done                int // tasks completed so far
}

func newRig(tb testing.TB, h *testHub) *rig {
	r := &rig{h: h, submitted: map[string]time.Time{}, assigned: map[string]time.Time{}}
	work := func(a *testAgent, as protocol.Assignment) {
		r.mu.Lock()
		r.assigned[as.TaskID] = time.Now()
		r.mu.Unlock()
		completeAtOnce(a, as)
	}
	for i := range benchAgents {
		newTestAgent(tb, h, fmt.Sprintf("bench-%d", i), nil, work)
	}
	return r
}

// run submits n more tasks and waits until they are completed.
func (r *rig) run(tb testing.TB, n int) {
	runSubmits(tb, r.h, n, &r.mu, r.submitted)
	r.done += n
	waitCompleted(tb, r.h, r.done)
}

// benchAssignLatency submits one task at a time to idle agents and
// measures submit-to-assignment latency without queueing: the time to
// store the submit, wake the scheduler, store the assignment and push it.
func benchAssignLatency(b *testing.B, interval time.Duration) {
	h := startHubWith(b, "", interval, logsink.LevelWarning)
	got := make(chan time.Time, 1)
	for i := range benchAgents {
		newTestAgent(b, h, fmt.Sprintf("lat-%d", i), nil, func(a *testAgent, as protocol.Assignment) {
			got <- time.Now()
			completeAtOnce(a, as)
		})
	}
	ctx := context.Background()
	body := []byte(`{"description":"latency benchmark task"}`)
	lat := make([]float64, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if r := h.api.Submit(ctx, "admin", body); r.Status != 201 {
			b.Fatalf("submit: %d", r.Status)
		}
		lat = append(lat, float64((<-got).Sub(t0).Microseconds())/1000)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-assign-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-assign-ms")
}

// runSubmits submits n tasks from 32 goroutines, recording when each
// submit was sent.
func runSubmits(b testing.TB, h *testHub, n int, mu *sync.Mutex, submitted map[string]time.Time) {
	ctx := context.Background()
	body := []byte(`{"description":"lifecycle benchmark task","priority":"normal"}`)
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range 32 {
		wg.Go(func() {
			for range next {
				t0 := time.Now()
				r := h.api.Submit(ctx, "admin", body)
				if r.Status != 201 {
					b.Errorf("submit: %d %v", r.Status, r.Body)
					return
				}
				id := r.Body.(ops.Submitted).TaskID
				mu.Lock()
				submitted[id] = t0
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// waitCompleted waits until n tasks are completed: 5 minutes for each
// 20,000 (the memory benchmark's million takes the better part of an hour).
func waitCompleted(b testing.TB, h *testHub, n int) {
	deadline := time.Now().Add(time.Duration(max(1, n/20000)) * 5 * time.Minute)
	for h.Tasks().Stats().ByStatus["completed"] < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d tasks completed", h.Tasks().Stats().ByStatus["completed"], n)
		}
		time.Sleep(time.Millisecond)
	}
}

func reportLatency(b *testing.B, submitted, assigned map[string]time.Time) {
	var lat []float64
	for id, t0 := range submitted {
		if t1, ok := assigned[id]; ok {
			lat = append(lat, float64(t1.Sub(t0).Microseconds())/1000)
		}
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-assign-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-assign-ms")
}

// cpuTime is the CPU time the process has used, user and system: the hub,
// its NATS server and the benchmark's agents together.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
