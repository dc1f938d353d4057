package hub

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/logsink/logtest"
)

// TestBusyPortFailsTheStartAtOnce occupies the NATS or the HTTP address
// with a real listener: the start fails at once with an error naming the
// address and its key, logs no "hub stopped", and leaves the data
// directory free for the next start.
func TestBusyPortFailsTheStartAtOnce(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"nats.listen", "http.listen"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer busy.Close()
			addr := busy.Addr().String()
			dir := t.TempDir()
			cfg := config.Hub{
				NATS: config.NATSListener{Listener: config.Listener{Listen: "127.0.0.1:0"}}, HTTP: config.HTTPListener{Listener: config.Listener{Listen: "127.0.0.1:0"}, OpenReads: true},
				DataDir: dir, Store: testStore(), Log: config.Log{Level: "debug"},
				Agents: config.AgentDefaults, Telemetry: config.TelemetryDefaults,
			}
			if key == "nats.listen" {
				cfg.NATS.Listen = addr
			} else {
				cfg.HTTP.Listen = addr
			}
			logs := &logtest.Buffer{}
			h := New(Params{Config: cfg, Log: logsink.New(logs, "test", logsink.LevelDebug)})
			start := time.Now()
			err = h.Start(context.Background())
			took := time.Since(start)
			require.Error(t, err)
			require.ErrorContains(t, err, addr)
			require.ErrorContains(t, err, key)
			// Immediate by design (no wait at all); 5 s is room for a loaded machine.
			require.Less(t, took, 5*time.Second, "the start took %s to fail", took)
			require.NotContains(t, logs.String(), "hub stopped")
			again := startHubCfg(t, dir, logsink.LevelInfo, func(*config.Hub) {})
			require.NotEmpty(t, again.HTTPURL())
		})
	}
}
