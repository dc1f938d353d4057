package telemetry_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/logsink/logtest"
	"github.com/agentcom/agentcom/telemetry"
)

// history reads back every kept event matching filter.
func history(t *testing.T, b *brokertest.Bundle, since time.Time, filter string) []telemetry.Event {
	t.Helper()
	var evs []telemetry.Event
	require.NoError(t, telemetry.History(context.Background(), b.Conn, since, filter,
		func(ev telemetry.Event) { evs = append(evs, ev) }))
	return evs
}

func TestStreamKeepsEveryEventInBatches(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	require.NoError(t, broker.OpenTelemetry(context.Background(), b.Conn, time.Hour, 64<<20))
	start := time.Now()
	em := telemetry.New(b.Conn, "node-1", logsink.Nop())
	const n = 3000
	for i := range n {
		em.Emit("task.submit", map[string]float64{"queue_depth": float64(i)}, map[string]any{"task_id": fmt.Sprint(i)})
		em.Emit("agent.connect", nil, map[string]any{"agent_id": "a", "pad": strings.Repeat("x", 64)})
	}
	em.Stop()
	require.Zero(t, em.Dropped())

	subs := history(t, b, start, "task.*")
	require.Len(t, subs, n, "every event is kept, each once")
	for i, ev := range subs {
		require.Equal(t, "task.submit", ev.Event)
		require.Equal(t, fmt.Sprint(i), ev.Metadata["task_id"], "in emission order")
		require.EqualValues(t, i, ev.Measurements["queue_depth"])
	}
	require.Len(t, history(t, b, start, ">"), 2*n)
	require.Empty(t, history(t, b, time.Now(), ">"), "nothing since now")

	st, err := jetstream.New(b.Conn)
	require.NoError(t, err)
	info, err := st.Stream(context.Background(), broker.TelemetryStream)
	require.NoError(t, err)
	msgs := info.CachedInfo().State.Msgs
	require.Less(t, msgs, uint64(n/10), "events are stored in batches, not a message each")
	require.Equal(t, broker.TelemetryHistory("node-1"), "agentcom.telemetry.node-1")
}

func TestPublishWhenWatched(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	require.NoError(t, broker.OpenTelemetry(context.Background(), b.Conn, time.Hour, 64<<20))
	em := telemetry.New(b.Conn, "n", logsink.Nop(), telemetry.PublishWhenWatched(b.Server.Watched))
	defer em.Stop()
	em.Emit("task.cancel", nil, map[string]any{"task_id": "unwatched"})
	require.NoError(t, em.Flush(context.Background()))
	require.Len(t, history(t, b, time.Time{}, "task.cancel"), 1, "kept while nobody watches")

	sub := subscribe(t, b.Conn) // a watcher
	em.Emit("task.cancel", nil, map[string]any{"task_id": "watched"})
	_, ev := next(t, sub)
	require.Equal(t, "watched", ev.Metadata["task_id"], "the unwatched event was never published live")
}

func TestLaterWritesOnTheEmitter(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	sub := subscribe(t, b.Conn)
	logs := &logtest.Buffer{}
	em := telemetry.New(b.Conn, "n", logsink.New(logs, "n", logsink.LevelDebug))
	defer em.Stop()
	var handled []telemetry.Event
	var mu sync.Mutex
	em.Attach("test", "task.complete", func(ev telemetry.Event) {
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, ev)
	})
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	em.Later(func(telemetry.Writer) { panic("builder bug") })
	em.Later(func(w telemetry.Writer) {
		w.Event(at, "task.accept").Str("task_id", "t1").Int("generation", 2).Send()
		w.Event(at.Add(time.Second), "task.complete").Num("duration_ms", 1000.5).
			Strs("capabilities", []string{"go", "a\"b"}).Str("task_id", "t1").Send()
	})
	subj, ev := next(t, sub)
	require.Equal(t, "agent_com.task.accept", subj)
	require.Equal(t, at.UTC(), ev.Time, "the time the event happened, in UTC")
	require.Equal(t, map[string]any{"task_id": "t1", "generation": 2.0}, ev.Metadata)
	require.Empty(t, ev.Measurements)
	_, ev = next(t, sub)
	require.Equal(t, "task.complete", ev.Event)
	require.Equal(t, map[string]float64{"duration_ms": 1000.5}, ev.Measurements)
	require.Equal(t, []any{"go", "a\"b"}, ev.Metadata["capabilities"])
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 1 && handled[0].Metadata["task_id"] == "t1"
	}, 5*time.Second, 5*time.Millisecond, "handlers get written events too")
	require.Contains(t, logs.String(), "building telemetry events panicked")
}

func TestWithoutTheStreamEventsAreCounted(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0) // no TELEMETRY stream
	logs := &logtest.Buffer{}
	em := telemetry.New(b.Conn, "n", logsink.New(logs, "n", logsink.LevelDebug))
	for range 3 {
		em.Emit("task.cancel", nil, nil)
		require.NoError(t, em.Flush(context.Background()))
	}
	em.Stop()
	require.EqualValues(t, 3, em.Dropped())
	require.Equal(t, 1, strings.Count(logs.String(), "does not take telemetry"), "logged once, not per batch")
	require.Error(t, em.Flush(context.Background()), "stopped")
}

// A store from before batching kept one event a message on agent_com.>:
// the stream takes the new subjects and the old events still read back.
func TestHistoryReadsEventsStoredOneAMessage(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	js, err := jetstream.New(b.Conn)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: broker.TelemetryStream, Subjects: []string{"agent_com.>"},
		Storage: jetstream.FileStorage, MaxAge: time.Hour, PersistMode: jetstream.AsyncPersistMode})
	require.NoError(t, err)
	old := `{"event":"task.submit","time":"2026-11-26T10:00:00Z","node":"n","measurements":{},"metadata":{"task_id":"old"}}`
	_, err = js.Publish(ctx, "agent_com.task.submit", []byte(old))
	require.NoError(t, err)

	require.NoError(t, broker.OpenTelemetry(ctx, b.Conn, time.Hour*24*365, 64<<20))
	em := telemetry.New(b.Conn, "n", logsink.Nop())
	em.Emit("task.submit", nil, map[string]any{"task_id": "new"})
	em.Stop()
	var ids []any
	for _, ev := range history(t, b, time.Time{}, "task.submit") {
		ids = append(ids, ev.Metadata["task_id"])
	}
	require.Equal(t, []any{"old", "new"}, ids)
}

// TestHistoryPagesEndToEnd: with a small budget each page stops early and
// says where to go on; read page by page, every event comes once, in order.
func TestHistoryPagesEndToEnd(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	ctx := context.Background()
	require.NoError(t, broker.OpenTelemetry(ctx, b.Conn, time.Hour, 64<<20))
	start := time.Now()
	em := telemetry.New(b.Conn, "node-1", logsink.Nop())
	const n = 500
	for i := range n {
		em.Emit("task.submit", nil, map[string]any{"task_id": fmt.Sprint(i), "pad": strings.Repeat("x", 200)})
		if i%50 == 49 {
			require.NoError(t, em.Flush(ctx))
		}
	}
	em.Stop()
	pages := 0
	var got []string
	err := telemetry.EachPage(ctx, func(ctx context.Context, q telemetry.HistoryQuery) (telemetry.HistoryPage, error) {
		pages++
		return telemetry.ReadHistoryPage(ctx, b.Conn, q, 1)
	}, start, "task.*", func(ev telemetry.Event) { got = append(got, ev.Metadata["task_id"].(string)) })
	require.NoError(t, err)
	require.Len(t, got, n)
	for i, id := range got {
		require.Equal(t, fmt.Sprint(i), id)
	}
	require.Greater(t, pages, 5, "a one-byte budget gives a page per stored message")
}
