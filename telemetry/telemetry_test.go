package telemetry_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker/brokertest"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/logsink/logtest"
	"github.com/agentcom/agentcom/telemetry"
)

func subscribe(t *testing.T, nc *nats.Conn) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync("agent_com.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return sub
}

func next(t *testing.T, sub *nats.Subscription) (string, telemetry.Event) {
	t.Helper()
	m, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	var ev telemetry.Event
	require.NoError(t, json.Unmarshal(m.Data, &ev))
	return m.Subject, ev
}

func TestEmitPublishesOnItsSubject(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	sub := subscribe(t, b.Conn)
	em := telemetry.New(b.Conn, "node-1", logsink.Nop())
	defer em.Stop()
	em.Emit("task.submit", map[string]float64{"queue_depth": 3}, map[string]any{"task_id": "task-1"})
	subj, ev := next(t, sub)
	require.Equal(t, "agent_com.task.submit", subj)
	require.Equal(t, "task.submit", ev.Event)
	require.Equal(t, "node-1", ev.Node)
	require.Equal(t, 3.0, ev.Measurements["queue_depth"])
	require.Equal(t, "task-1", ev.Metadata["task_id"])
	require.WithinDuration(t, time.Now(), ev.Time, 5*time.Second)
}

func TestSpanStopAndException(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	sub := subscribe(t, b.Conn)
	em := telemetry.New(b.Conn, "n", logsink.Nop())
	defer em.Stop()

	require.NoError(t, em.Span("store.backup", map[string]any{"kind_of": "full"}, func() (map[string]any, error) {
		return map[string]any{"bytes": 42}, nil
	}))
	_, start := next(t, sub)
	subj, stop := next(t, sub)
	require.Equal(t, "store.backup.start", start.Event)
	require.Positive(t, start.Measurements["system_time"])
	require.Equal(t, "agent_com.store.backup.stop", subj)
	require.Contains(t, stop.Measurements, "duration_ms")
	require.EqualValues(t, 42, stop.Metadata["bytes"])
	require.Equal(t, "full", stop.Metadata["kind_of"])
	require.Equal(t, start.Metadata["span_id"], stop.Metadata["span_id"])

	boom := errors.New("disk full")
	require.ErrorIs(t, em.Span("store.backup", nil, func() (map[string]any, error) { return nil, boom }), boom)
	_, start = next(t, sub)
	subj, exc := next(t, sub)
	require.Equal(t, "agent_com.store.backup.exception", subj)
	require.Equal(t, "error", exc.Metadata["kind"])
	require.Equal(t, "disk full", exc.Metadata["reason"])
	require.Contains(t, exc.Measurements, "duration_ms")
	require.Equal(t, start.Metadata["span_id"], exc.Metadata["span_id"])
}

func TestPanickingHandlerIsReportedAndStaysAttached(t *testing.T) {
	t.Parallel()
	logs := &logtest.Buffer{}
	em := telemetry.New(nil, "n", logsink.New(logs, "n", logsink.LevelDebug))
	defer em.Stop()
	var mu sync.Mutex
	calls := 0
	em.Attach("flaky", "task.", func(telemetry.Event) {
		mu.Lock()
		calls++
		mu.Unlock()
		panic("handler bug")
	})
	em.Emit("task.submit", nil, nil)
	em.Emit("agent.connect", nil, nil) // not for this handler
	em.Emit("task.cancel", nil, nil)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls == 2
	}, 5*time.Second, 5*time.Millisecond, "the handler keeps being called after it panicked")
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "telemetry handler panicked") == 2 },
		5*time.Second, 5*time.Millisecond)
	require.Contains(t, logs.String(), `"severity":"error"`)
}

func TestNilEmitterDropsEverything(t *testing.T) {
	t.Parallel()
	var em *telemetry.Emitter
	em.Emit("task.submit", nil, nil)
	require.NoError(t, em.Span("x", nil, func() (map[string]any, error) { return nil, nil }))
	em.Stop()
}

func TestEncodingIsValidJSON(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	sub := subscribe(t, b.Conn)
	em := telemetry.New(b.Conn, "n\"ode", logsink.Nop())
	defer em.Stop()
	meta := map[string]any{"s": "quote \" back \\ nl \n tab \t ünïcode \x01", "bad": "a\xffb", "i": 3, "u": uint64(7), "f": 1.5,
		"b": true, "list": []string{"a", "b\""}, "nil": nil, "other": map[string]int{"x": 1}}
	em.Emit("agent.connect", map[string]float64{"capabilities": 2.5}, meta)
	_, ev := next(t, sub)
	require.Equal(t, "n\"ode", ev.Node)
	require.Equal(t, meta["s"], ev.Metadata["s"])
	require.Equal(t, "a\ufffdb", ev.Metadata["bad"], "invalid UTF-8 is replaced")
	require.EqualValues(t, 3, ev.Metadata["i"])
	require.EqualValues(t, 7, ev.Metadata["u"])
	require.Equal(t, true, ev.Metadata["b"])
	require.Equal(t, []any{"a", "b\""}, ev.Metadata["list"])
	require.Nil(t, ev.Metadata["nil"])
	require.Equal(t, map[string]any{"x": 1.0}, ev.Metadata["other"])
	require.Equal(t, 2.5, ev.Measurements["capabilities"])
}
