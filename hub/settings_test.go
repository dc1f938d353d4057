package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// send calls op over one transport with path parameters and a JSON body,
// and returns the status and the decoded answer.
type send func(op ops.Op, params map[string]string, body string) (int, map[string]any)

// transports are an admin's HTTP and NATS callers of h.
func transports(t *testing.T, h *testHub) map[string]send {
	nc, err := nats.Connect(h.NATSURL(), nats.Token(h.token))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return map[string]send{
		"http": func(op ops.Op, params map[string]string, body string) (int, map[string]any) {
			return h.do(t, op.Method, splitParams(op, params).httpPath(op), h.token, body)
		},
		"nats": func(op ops.Op, params map[string]string, body string) (int, map[string]any) {
			return natsDo(t, nc, op.Subject(), probe{params: params, body: body}.natsBody(t))
		},
	}
}

// splitParams puts the parameters op's path has no place for in the
// query string (its filters, over HTTP).
func splitParams(op ops.Op, params map[string]string) probe {
	p := probe{params: map[string]string{}, query: url.Values{}}
	for k, v := range params {
		if strings.Contains(op.Path, "{"+k+"}") {
			p.params[k] = v
		} else {
			p.query.Set(k, v)
		}
	}
	return p
}

// fieldDetail is the detail of a 422's first field error, which must be field.
func fieldDetail(t *testing.T, out map[string]any, field string) string {
	t.Helper()
	errs, ok := out["errors"].([]any)
	require.True(t, ok && len(errs) > 0, "%v", out)
	e := errs[0].(map[string]any)
	require.Equal(t, field, e["field"], "%v", out)
	return e["detail"].(string)
}

// A run-time change takes effect at once (an assignment the file's
// timeout would leave alone is taken back at the next sweep; a heartbeat
// answers the new interval), is an event in the stream with who asked and
// the request id, and outlives a restart until it is reset.
func TestRunTimeSettingAppliesAtOnceAndOutlivesARestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	slow := func(cfg *config.Hub) { cfg.Agents.AcceptanceTimeout = time.Hour }
	h := startHubClock(t, dir, logsink.LevelInfo, clock.Now, slow)
	lazy := newTestAgent(t, h, "lazy", nil, ignore)
	id := h.submit(t, `{"description":"x"}`)
	waitStatus(t, h, id, domain.StatusAssigned)
	clock.Advance(30 * time.Second) // inside reap_after (1m): the agent stays
	h.coord.Sweep()
	require.Equal(t, domain.StatusAssigned, taskStatus(h, id), "an hour's timeout leaves it be")

	for name, do := range transports(t, h) {
		code, out := do(ops.OpConfigSet, map[string]string{"key": "agents.heartbeat_interval"}, `{"value":"20s"}`)
		require.Equal(t, http.StatusOK, code, "%s: %v", name, out)
		require.Equal(t, "20s", out["value"], name)
	}
	req, err := http.NewRequest(http.MethodPut, h.HTTPURL()+"/api/config/agents.acceptance_timeout",
		strings.NewReader(`{"value":"10s"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("X-Request-Id", "req-settings-1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	code, out := h.do(t, http.MethodPut, "/api/config/agents.budgets.lazy", h.token, `{"value":"2.5"}`)
	require.Equal(t, http.StatusOK, code, out)

	h.coord.Sweep()
	task := waitStatus(t, h, id, domain.StatusQueued)
	require.Equal(t, int32(1), task.ReclaimCount, "the new 10s applied without a restart")
	st, body := lazy.request(broker.VerbHeartbeat, protocol.Heartbeat{Session: lazy.session})
	require.Equal(t, http.StatusOK, st, string(body))
	var beat protocol.HeartbeatReply
	require.NoError(t, json.Unmarshal(body, &beat))
	require.Equal(t, int64(20_000), beat.HeartbeatIntervalMS, "a heartbeat answers the interval in force")

	env, ok, err := h.Store().LastEvent(context.Background(), broker.ConfigEvents("agents.acceptance_timeout"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "req-settings-1", env.RequestID)
	require.Equal(t, domain.ConfigChanged{Key: "agents.acceptance_timeout", Value: "10s", From: "1h", By: "admin"}, env.Data)
	require.Contains(t, h.logs.String(), `"message":"setting changed"`, "each change is logged")

	h.Stop()
	h = startHubClock(t, dir, logsink.LevelInfo, clock.Now, slow)
	code, out = h.do(t, http.MethodGet, "/api/config/agents.acceptance_timeout", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{"key": "agents.acceptance_timeout", "value": "10s", "file_value": "1h",
		"source": "run-time", "changed_at": clock.Now().UTC().Format(time.RFC3339Nano), "changed_by": "admin",
		"summary": "how long an agent has to accept an assignment"}, out)
	code, out = h.do(t, http.MethodDelete, "/api/config/agents.acceptance_timeout", h.token, "")
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, "1h", out["value"])
	require.Equal(t, "file", out["source"])

	h.Stop()
	h = startHubClock(t, dir, logsink.LevelInfo, clock.Now, slow)
	code, out = h.do(t, http.MethodGet, "/api/config", h.token, "")
	require.Equal(t, http.StatusOK, code)
	byKey := map[string]map[string]any{}
	for _, s := range out["settings"].([]any) {
		byKey[s.(map[string]any)["key"].(string)] = s.(map[string]any)
	}
	require.Len(t, byKey, len(config.Settings)+1, "the fixed settings and lazy's own budget")
	require.Equal(t, "2.5", byKey["agents.budgets.lazy"]["value"])
	require.Equal(t, "", byKey["agents.budgets.lazy"]["file_value"])
	require.Equal(t, "1h", byKey["agents.acceptance_timeout"]["value"], "a reset outlives the restart too")
	require.Equal(t, "20s", byKey["agents.heartbeat_interval"]["value"])
	require.Equal(t, "run-time", byKey["agents.heartbeat_interval"]["source"])
}

func taskStatus(h *testHub, id string) domain.Status {
	task, _, _ := h.Tasks().Get(id)
	return task.Status
}

// A value the configuration file would refuse is refused at run time,
// over both transports, naming what is wrong, and nothing is stored; an
// unknown key is 404 with the keys there are.
func TestRunTimeSettingRefusesWhatTheFileWould(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	refused := []struct{ key, body, says string }{
		{"agents.stuck_threshold", `{"value":"soon"}`, `"soon" is not a duration`},
		{"agents.stuck_threshold", `{"value":"1ms"}`, "make agents.stuck_threshold at least"},
		{"agents.reap_after", `{"value":"10s"}`, "must be longer than agents.heartbeat_interval"},
		{"agents.heartbeat_interval", `{"value":"-5s"}`, "must be a positive duration"},
		{"agents.daily_budget_usd", `{"value":"-1"}`, "must not be negative"},
		{"agents.daily_budget_usd", `{"value":"lots"}`, "is not a number"},
		{"agents.default_repo", `{"value":"not a url"}`, "is not a repository address"},
		{"agents.budgets.a1", `{"value":"lots"}`, "is not a number"},
		{"agents.budgets.a1", `{"value":"-2"}`, "must not be negative"},
	}
	for name, do := range transports(t, h) {
		for _, r := range refused {
			code, out := do(ops.OpConfigSet, map[string]string{"key": r.key}, r.body)
			require.Equal(t, http.StatusUnprocessableEntity, code, "%s %s %s: %v", name, r.key, r.body, out)
			require.Contains(t, fieldDetail(t, out, "value"), r.says, name)
		}
		code, out := do(ops.OpConfigSet, map[string]string{"key": "agents.reap_after"}, `{"value":90}`)
		require.Equal(t, http.StatusUnprocessableEntity, code, name)
		require.Contains(t, fieldDetail(t, out, "body"), "the value a string", name)
		for _, op := range []ops.Op{ops.OpConfigGet, ops.OpConfigSet, ops.OpConfigReset} {
			for _, key := range []string{"agents.sweep_interval", "agents.budgets.", "agents.budgets.a b"} {
				code, out := do(op, map[string]string{"key": key}, `{"value":"1s"}`)
				require.Equal(t, http.StatusNotFound, code, "%s %s %s", name, op.Name, key)
				require.Equal(t, "setting_not_found", out["error"])
				require.Contains(t, out["detail"], "agents.heartbeat_interval, agents.reap_after", "the keys there are")
			}
		}
	}
	for _, key := range config.SettingKeys() {
		_, ok, err := h.Store().LastEvent(context.Background(), broker.ConfigEvents(key))
		require.NoError(t, err)
		require.False(t, ok, "a refused change of %s stored nothing", key)
	}
	code, out := h.do(t, http.MethodGet, "/api/config/agents.reap_after", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "1m", out["value"])
}

// Onboarding makes an agent's first token and a sidecar configuration
// that loads as written; a second registration of the name, even a
// concurrent one, is refused and leaves the first token working.
func TestOnboardRegistersAnAgentOnce(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	code, _ := h.do(t, http.MethodPut, "/api/config/agents.default_repo", h.token, `{"value":"git@example.com:org/repo.git"}`)
	require.Equal(t, http.StatusOK, code)
	for name, do := range transports(t, h) {
		id := "new-" + name
		code, out := do(ops.OpOnboard, nil, `{"agent_id":"`+id+`","capabilities":["go","review"],"max_tasks":2,"exec":"echo done"}`)
		require.Equal(t, http.StatusCreated, code, "%s: %v", name, out)
		require.Equal(t, "git@example.com:org/repo.git", out["default_repo"])
		require.Equal(t, h.NATSURL(), out["nats_url"])
		require.Equal(t, h.HTTPURL(), out["hub_api_url"])
		sc := loadSidecarConfig(t, out["sidecar_config"].(string))
		require.Equal(t, id, sc.AgentID)
		require.Equal(t, out["token"], sc.Token)
		require.Equal(t, h.NATSURL(), sc.Hub)
		require.Equal(t, []string{"go", "review"}, sc.Capabilities)
		require.Equal(t, 2, sc.MaxTasks)
		require.Equal(t, "echo done", sc.Exec)
		a := agentWithToken(t, h, id, sc.Token)
		require.Equal(t, http.StatusOK, a.hello(nil), "the token is the agent's")

		code, again := do(ops.OpOnboard, nil, `{"agent_id":"`+id+`"}`)
		require.Equal(t, http.StatusConflict, code, name)
		require.Equal(t, "agent_already_registered", again["error"])
		require.Equal(t, http.StatusOK, a.call(broker.VerbHeartbeat, protocol.Heartbeat{Session: a.session}),
			"the refused registration left the first token working")

		for body, field := range map[string]string{
			`{"agent_id":"a b"}`:                          "agent_id",
			`{"agent_id":""}`:                             "agent_id",
			`{"agent_id":"x","capabilities":[" "]}`:       "capabilities[0]",
			`{"agent_id":"x","max_tasks":100000}`:         "max_tasks",
			`{"agent_id":"x","exec":"a","wake":"b"}`:      "wake",
			`{"agent_id":"x","capabilities":"go,review"}`: "body",
		} {
			code, out := do(ops.OpOnboard, nil, body)
			require.Equal(t, http.StatusUnprocessableEntity, code, "%s %s: %v", name, body, out)
			fieldDetail(t, out, field)
		}
	}
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = h.do(t, http.MethodPost, "/api/onboard/register", h.token, `{"agent_id":"racer"}`)
		}()
	}
	wg.Wait()
	require.ElementsMatch(t, []int{201, 409, 409, 409}, codes, "one registration of a name wins")
}

// loadSidecarConfig loads an onboarding answer's YAML as the sidecar would.
func loadSidecarConfig(t *testing.T, yaml string) config.Sidecar {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sidecar.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	fs := pflag.NewFlagSet("sidecar", pflag.ContinueOnError)
	config.SidecarFlags(fs)
	require.NoError(t, fs.Parse([]string{"--config", path, "--state-dir", t.TempDir()}))
	sc, err := config.LoadSidecar(fs)
	require.NoError(t, err, yaml)
	return sc
}

// agentWithToken connects as agent id with a token the test did not make.
func agentWithToken(t *testing.T, h *testHub, id, token string) *testAgent {
	t.Helper()
	nc, err := nats.Connect(h.NATSURL(), nats.Token(token), nats.CustomInboxPrefix(broker.AgentInbox(id)), nats.NoReconnect())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return &testAgent{id: id, session: "s-" + id, nc: nc, work: ignore, token: token}
}

// Stored changes that no longer hold with an edited configuration file
// are not applied: the hub starts on the file's values and says why.
func TestStoredSettingsThatClashWithTheFileAreReportedNotApplied(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHub(t, dir)
	code, out := h.do(t, http.MethodPut, "/api/config/agents.reap_after", h.token, `{"value":"5m"}`)
	require.Equal(t, http.StatusOK, code, out)
	h.Stop()
	h = startHubOpts(t, dir, logsink.LevelDebug, hubOpts{now: time.Now, paused: true}, func(cfg *config.Hub) {
		cfg.Agents.HeartbeatInterval = 10 * time.Minute
		cfg.Agents.ReapAfter = 20 * time.Minute
	})
	code, out = h.do(t, http.MethodGet, "/api/config/agents.reap_after", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "20m", out["value"], "5m would not be longer than the file's 10m heartbeat")
	require.Equal(t, "file", out["source"])
	require.Contains(t, h.logs.String(), "run-time settings not applied")
}
