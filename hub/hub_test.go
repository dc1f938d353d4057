package hub

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/logsink/logtest"
)

type testHub struct {
	*Hub
	token string
	logs  *logtest.Buffer
}

// startHub runs a real hub (embedded NATS on a random port, temp store,
// HTTP on a random port) and stops it when the test ends. Every log line
// it wrote must be one JSON object.
// startHub runs a hub whose scheduler is paused: the test assigns by hand.
// Paused from the start: a scheduler paused only after Start could hand
// the queue to agents the log knows before the pause takes.
func startHub(t testing.TB, dataDir string) *testHub {
	t.Helper()
	return startHubOpts(t, dataDir, logsink.LevelDebug, hubOpts{now: time.Now, paused: true},
		func(cfg *config.Hub) { cfg.Store.SyncInterval = 0 })
}

func startHubWith(t testing.TB, dataDir string, syncInterval time.Duration, level logsink.Level) *testHub {
	t.Helper()
	return startHubCfg(t, dataDir, level, func(cfg *config.Hub) { cfg.Store.SyncInterval = syncInterval })
}

// startHubCfg runs a hub with the test defaults changed by edit.
func startHubCfg(t testing.TB, dataDir string, level logsink.Level, edit func(*config.Hub)) *testHub {
	t.Helper()
	return startHubClock(t, dataDir, level, time.Now, edit)
}

// startHubClock runs a hub whose commands and scheduler read now.
func startHubClock(t testing.TB, dataDir string, level logsink.Level, now func() time.Time, edit func(*config.Hub)) *testHub {
	t.Helper()
	return startHubOpts(t, dataDir, level, hubOpts{now: now}, edit)
}

// hubOpts are a test hub's clock and whether its scheduler starts paused.
type hubOpts struct {
	now    func() time.Time
	paused bool
	// refusalTimer replaces time.AfterFunc for the refused-requests summary.
	refusalTimer func(time.Duration, func())
	// schedulePoll is how often the schedules look at the clock (0: 1s).
	schedulePoll time.Duration
}

func startHubOpts(t testing.TB, dataDir string, level logsink.Level, opts hubOpts, edit func(*config.Hub)) *testHub {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	cfg := config.Hub{
		NATS: config.NATSListener{Listener: config.Listener{Listen: "127.0.0.1:0"}}, HTTP: config.HTTPListener{Listener: config.Listener{Listen: "127.0.0.1:0"}, OpenReads: true},
		DataDir: dataDir, Store: testStore(), Log: config.Log{Level: "debug"},
		Agents: config.AgentDefaults, Telemetry: config.TelemetryDefaults, RateLimits: config.RateLimitDefaults, Alerts: config.AlertDefaults, Messages: config.MessageDefaults,
	}
	edit(&cfg)
	logs := &logtest.Buffer{}
	out := logsink.NewOutput(logs)
	h := New(Params{Config: cfg, Log: logsink.New(out, "test", level), Out: out, Now: opts.now, PauseScheduler: opts.paused,
		RefusalTimer: opts.refusalTimer, SchedulePoll: opts.schedulePoll})
	require.NoError(t, h.Start(context.Background()))
	t.Cleanup(func() {
		h.Stop()
		for _, line := range logs.Lines() {
			logtest.RequireLine(t, []byte(line))
		}
	})
	tok, err := config.LoadClient(clientFlags(t, h, dataDir), "admin.token")
	require.NoError(t, err)
	return &testHub{Hub: h, token: tok.Token, logs: logs}
}

// do sends an HTTP request; token "" sends none.
func (h *testHub) do(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	return h.doWith(t, method, path, token, body, nil)
}

// doWith is do with extra request headers.
func (h *testHub) doWith(t *testing.T, method, path, token, body string, headers map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, h.HTTPURL()+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") { // /metrics
		out = map[string]any{"text": string(raw)}
	} else {
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	}
	require.NotEmpty(t, resp.Header.Get("X-Request-Id"))
	return resp.StatusCode, out
}

func (h *testHub) submit(t *testing.T, body string) string {
	t.Helper()
	code, out := h.do(t, http.MethodPost, "/api/tasks", h.token, body)
	require.Equal(t, http.StatusCreated, code, out)
	return out["task_id"].(string)
}

// testStore is the store settings of test hubs: fsync always, defaults.
func testStore() config.Store {
	s := config.StoreDefaults
	s.Sync = "always"
	return s
}
