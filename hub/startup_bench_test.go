package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/logsink/logtest"
	"github.com/agentcom/agentcom/writer"
)

// startupEvents is how many events BenchmarkStartup's stream holds
// (startupEventsShort with -short).
const (
	startupEvents      = 1_000_000
	startupEventsShort = 100_000
	// startupBatch is how many submit events one atomic append carries.
	startupBatch = 500
	// startupWriters append batches at once while the store is built.
	startupWriters = 4
)

// BenchmarkStartup times Hub.Start, and Stop, of a hub whose stream holds
// startupEvents task submissions: rebuilding the projections from every
// event, and loading the snapshot. The store is built once (atomic
// batches straight to the event store, store.sync 1s) and kept for both.
// One task per event is the snapshot's worst case: its cost is per task.
//
//	go test -run '^$' -bench 'BenchmarkStartup$' -benchtime 3x ./hub
func BenchmarkStartup(b *testing.B) { benchStartupStore(b, submitAppends) }

// BenchmarkStartupLifecycles is BenchmarkStartup with tasks that went the
// whole way (submitted, assigned, accepted, progressed, completed): five
// events per task, as a stream of finished work holds.
func BenchmarkStartupLifecycles(b *testing.B) { benchStartupStore(b, lifecycleAppends) }

// appendsFunc makes the appends of n events.
type appendsFunc func(n int) ([]broker.Append, error)

func benchStartupStore(b *testing.B, gen appendsFunc) {
	n := startupEvents
	if testing.Short() {
		n = startupEventsShort
	}
	dir := b.TempDir()
	buildStartupStore(b, dir, n, gen)
	b.Run("without-snapshot", func(b *testing.B) { benchStartup(b, dir, n, false) })
	b.Run("with-snapshot", func(b *testing.B) { benchStartup(b, dir, n, true) })
}

// benchStartup starts and stops a hub on dir b.N times, with or without
// the snapshot file in place, and reports the start time, the part of it
// that brought the projections up (ms/rebuild: full replay, or snapshot
// load and tail), the events per second of that part, and the stop time
// (which writes the snapshot when there was none).
func benchStartup(b *testing.B, dir string, n int, withSnapshot bool) {
	if withSnapshot { // the first stop writes it
		h, _ := startupHub(b, dir)
		h.Stop()
	}
	var start, stop, rebuild time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if !withSnapshot {
			require.NoError(b, os.RemoveAll(snapshotFileOf(dir)))
		}
		runtime.GC() // the previous hub's projections are garbage now
		b.StartTimer()
		began := time.Now()
		h, logs := startupHub(b, dir)
		start += time.Since(began)
		b.StopTimer()
		require.Equal(b, uint64(n), h.Tasks().LastSeq())
		requireStartedFrom(b, h, withSnapshot)
		rebuild += rebuildTime(b, logs)
		began = time.Now()
		h.Stop()
		stop += time.Since(began)
	}
	perStart := start / time.Duration(b.N)
	b.ReportMetric(float64(perStart.Microseconds())/1000, "ms/start")
	b.ReportMetric(float64(n)/(rebuild/time.Duration(b.N)).Seconds(), "events/s")
	b.ReportMetric(float64((stop/time.Duration(b.N)).Microseconds())/1000, "ms/stop")
	b.ReportMetric(float64((rebuild/time.Duration(b.N)).Microseconds())/1000, "ms/rebuild")
}

// rebuildTime is how long the projections took to come up (snapshot load
// and tail, or full replay), from the hub's "projections rebuilt" line.
func rebuildTime(b *testing.B, logs *logtest.Buffer) time.Duration {
	for _, line := range logs.Lines() {
		var m map[string]any
		require.NoError(b, json.Unmarshal([]byte(line), &m))
		if m["message"] == "projections rebuilt" {
			return time.Duration(m["duration_ms"].(float64) * float64(time.Millisecond))
		}
	}
	b.Fatal("no projections rebuilt line")
	return 0
}

// requireStartedFrom checks the hub used the snapshot exactly when one
// was there.
func requireStartedFrom(b *testing.B, h *Hub, withSnapshot bool) {
	rec := snapshotRecord(h)
	if !withSnapshot {
		require.Nil(b, rec)
		return
	}
	require.NotNil(b, rec)
	require.True(b, rec.OK, rec.Detail)
	require.Equal(b, uint64(0), rec.Detail["tail_events"])
}

// startupHub starts a hub on dir the way the benchmark times it. The
// caller stops it (a cleanup would keep every hub's projections alive).
func startupHub(b *testing.B, dir string) (*Hub, *logtest.Buffer) {
	cfg := config.Hub{
		NATS: config.NATSListener{Listener: config.Listener{Listen: "127.0.0.1:0"}}, HTTP: config.HTTPListener{Listener: config.Listener{Listen: "127.0.0.1:0"}, OpenReads: true},
		DataDir: dir, Store: config.StoreDefaults, Log: config.Log{Level: "info"},
		Agents: config.AgentDefaults, Telemetry: config.TelemetryDefaults,
	}
	cfg.Store.Sync, cfg.Store.SyncInterval = "1s", time.Second
	logs := &logtest.Buffer{}
	h := New(Params{Config: cfg, Log: logsink.New(logs, "bench", logsink.LevelInfo)})
	require.NoError(b, h.Start(context.Background()))
	return h, logs
}

// buildStartupStore appends n events made by gen to the store in dir,
// in atomic batches from several writers.
func buildStartupStore(b *testing.B, dir string, n int, gen appendsFunc) {
	h, _ := startupHub(b, dir)
	defer h.Stop()
	began := time.Now()
	batches := make(chan int)
	errs := make(chan error, startupWriters)
	var wg sync.WaitGroup
	for range startupWriters {
		wg.Go(func() {
			for size := range batches {
				appends, err := gen(size)
				if err == nil {
					_, err = h.Store().AppendAtomic(context.Background(), appends)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for left := n; left > 0; left -= startupBatch {
		batches <- min(left, startupBatch)
	}
	close(batches)
	wg.Wait()
	close(errs)
	require.NoError(b, <-errs)
	last, err := h.Store().LastSeq(context.Background())
	require.NoError(b, err)
	require.Equal(b, uint64(n), last)
	b.Logf("built a store of %d events in %s", n, time.Since(began).Round(time.Millisecond))
}

// submitAppends returns n submissions of new tasks, as the command
// service would store them.
func submitAppends(n int) ([]broker.Append, error) {
	now := time.Now().UTC()
	out := make([]broker.Append, n)
	for i := range out {
		id := writer.NewTaskID()
		cmd := domain.SubmitTask{ID: id, Description: "summarise the build log and open an issue for each new failure",
			Priority: domain.Priority(i % domain.PriorityCount), Metadata: []byte(`{"repo":"agentcom","branch":"main"}`),
			NeededCapabilities: []string{"go"}, SubmittedBy: "admin"}
		events, err := cmd.Decide(nil, now)
		if err != nil {
			return nil, fmt.Errorf("decide a benchmark submit: %w", err)
		}
		ctx := logsink.WithRequestID(context.Background(), logsink.NewRequestID())
		out[i] = broker.Append{Subject: broker.TaskEvents(id), Events: writer.Envelopes(ctx, id, now, events)}
	}
	return out, nil
}

// lifecycleEvents is how many events lifecycleAppends makes per task.
const lifecycleEvents = 5

// lifecycleAppends returns the whole lives of n/5 tasks, each one append
// of five events on its subject.
func lifecycleAppends(n int) ([]broker.Append, error) {
	now := time.Now().UTC()
	out := make([]broker.Append, 0, n/lifecycleEvents)
	for range n / lifecycleEvents {
		id := writer.NewTaskID()
		ctx := logsink.WithRequestID(context.Background(), logsink.NewRequestID())
		envs, err := lifecycle5(ctx, id, now)
		if err != nil {
			return nil, err
		}
		out = append(out, broker.Append{Subject: broker.TaskEvents(id), Events: envs})
	}
	return out, nil
}

// lifecycle5 decides one task's five commands in turn.
func lifecycle5(ctx context.Context, id string, now time.Time) ([]domain.Envelope, error) {
	const agent = "agent-bench"
	cmds := []func(t *domain.Task) domain.Command{
		func(*domain.Task) domain.Command {
			return domain.SubmitTask{ID: id, Description: "summarise the build log and open an issue for each new failure",
				Priority: domain.PriorityNormal, Metadata: []byte(`{"repo":"agentcom","branch":"main"}`), SubmittedBy: "admin"}
		},
		func(*domain.Task) domain.Command { return domain.AssignTask{ID: id, AgentID: agent} },
		func(t *domain.Task) domain.Command {
			return domain.AcceptTask{ID: id, AgentID: agent, Generation: t.Generation}
		},
		func(t *domain.Task) domain.Command {
			return domain.ReportProgress{ID: id, AgentID: agent, Generation: t.Generation, Message: "half way"}
		},
		func(t *domain.Task) domain.Command {
			return domain.CompleteTask{ID: id, AgentID: agent, Generation: t.Generation, Result: []byte(`"done"`)}
		},
	}
	var task *domain.Task
	var all []domain.Envelope
	for _, cmd := range cmds {
		events, err := cmd(task).Decide(task, now)
		if err != nil {
			return nil, fmt.Errorf("decide a benchmark command: %w", err)
		}
		for _, env := range writer.Envelopes(ctx, id, now, events) {
			task = domain.Evolve(task, env)
			all = append(all, env)
		}
	}
	return all, nil
}
