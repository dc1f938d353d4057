package hub

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
)

// storeForeignEvent writes an event this build cannot read straight into
// the stream, as a newer hub or a bug might.
func storeForeignEvent(t *testing.T, h *Hub) {
	t.Helper()
	js, err := jetstream.New(h.nc)
	require.NoError(t, err)
	_, err = js.Publish(context.Background(), broker.TaskEvents("task-future"),
		[]byte(`{"id":"evt-x","type":"task.teleported","v":1,"time":"2026-01-01T00:00:00Z","aggregate":"task-future","data":{}}`))
	require.NoError(t, err)
}

func TestUnreadableEventStopsCommandsAndHealth(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	h.submit(t, `{"description":"before"}`)
	storeForeignEvent(t, h.Hub)
	// This submit is stored, but its events no longer follow the
	// projection's: the hub reads the stream, meets the unknown event, and
	// stops taking commands rather than serve a state that has drifted.
	h.submit(t, `{"description":"stored, then the hub stops"}`)
	code, out := h.do(t, http.MethodPost, "/api/tasks", h.token, `{"description":"refused"}`)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "unavailable", out["error"])
	code, out = h.do(t, http.MethodGet, "/health", "", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "unhealthy", out["status"])
	require.Contains(t, out["error"], "task.teleported")
}

func TestStartFailsCleanlyOnAnUnreadableStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHub(t, dir)
	storeForeignEvent(t, h.Hub)
	h.Stop()

	cfg := config.Hub{
		NATS: config.NATSListener{Listener: config.Listener{Listen: "127.0.0.1:0"}}, HTTP: config.HTTPListener{Listener: config.Listener{Listen: "127.0.0.1:0"}, OpenReads: true},
		DataDir: dir, Store: testStore(), Log: config.Log{Level: "info"}, Agents: config.AgentDefaults, Telemetry: config.TelemetryDefaults,
	}
	again := New(Params{Config: cfg, Log: logsink.Nop()})
	done := make(chan error, 1)
	go func() { done <- again.Start(context.Background()) }()
	select {
	case err := <-done:
		require.ErrorContains(t, err, `unknown event type "task.teleported"`)
	case <-time.After(30 * time.Second):
		t.Fatal("Start hung after a failed rebuild")
	}
	// The failed start released everything: a healthy hub can open the dir.
	unlock, err := broker.LockDataDir(dir)
	require.NoError(t, err)
	unlock()
}
