package hub

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
)

func TestLogLevelEndpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubCfg(t, dir, logsink.LevelInfo, func(c *config.Hub) { c.Log.Level = "info" })
	agent := newTestAgent(t, h, "lev", nil, ignore)

	code, out := h.do(t, http.MethodPut, "/api/admin/log-level", h.token, `{"level":"debug"}`)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "debug", out["level"])
	code, out = h.do(t, http.MethodPut, "/api/admin/log-level", h.token, `{"level":"warning","module":"agents"}`)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "agents", out["module"])
	code, out = h.do(t, http.MethodGet, "/api/admin/log-level", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "debug", out["level"])
	require.Equal(t, map[string]any{"agents": "warning"}, out["modules"])

	for _, body := range []string{`{"level":"loud"}`, `{"level":3}`, `not json`, `{}`} {
		code, out = h.do(t, http.MethodPut, "/api/admin/log-level", h.token, body)
		require.Equal(t, http.StatusUnprocessableEntity, code, body)
		require.Equal(t, []any{"debug", "info", "notice", "warning", "error"}, out["valid_levels"], body)
	}
	code, out = h.do(t, http.MethodPut, "/api/admin/log-level", h.token, `{"level":"debug","module":"scheduler-7"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Equal(t, "module", fieldOf(out))
	detail := out["errors"].([]any)[0].(map[string]any)["detail"].(string)
	require.Contains(t, detail, `unknown module "scheduler-7"`)
	require.Contains(t, detail, strings.Join(logsink.Modules, ", "))
	require.Len(t, out["valid_modules"], len(logsink.Modules))
	code, _ = h.do(t, http.MethodPut, "/api/admin/log-level", "", `{"level":"debug"}`)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = h.do(t, http.MethodPut, "/api/admin/log-level", agent.token, `{"level":"debug"}`)
	require.Equal(t, http.StatusForbidden, code)

	// The change was logged at notice, with who made it.
	found := false
	for _, line := range h.logs.Lines() {
		if strings.Contains(line, `"log level changed"`) && strings.Contains(line, `"severity":"notice"`) &&
			strings.Contains(line, `"by":"admin"`) {
			found = true
		}
	}
	require.True(t, found, "the level change is logged at notice with who")

	// A restart returns to the configured level.
	h.Stop()
	again := startHubCfg(t, dir, logsink.LevelInfo, func(c *config.Hub) { c.Log.Level = "info" })
	code, out = again.do(t, http.MethodGet, "/api/admin/log-level", again.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "info", out["level"])
	require.Empty(t, out["modules"])
}

// TestMadeUpModulesAreNotKept: 2,000 made-up module names are refused,
// and the levels in force stay as small as the list of modules.
func TestMadeUpModulesAreNotKept(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(c *config.Hub) { c.Log.Level = "info" })
	for i := range 2000 {
		body := fmt.Sprintf(`{"level":"debug","module":"made-up-%04d"}`, i)
		code, _ := h.do(t, http.MethodPut, "/api/admin/log-level", h.token, body)
		require.Equal(t, http.StatusUnprocessableEntity, code, body)
	}
	for _, m := range logsink.Modules {
		code, _ := h.do(t, http.MethodPut, "/api/admin/log-level", h.token, `{"level":"debug","module":"`+m+`"}`)
		require.Equal(t, http.StatusOK, code, m)
	}
	req, err := http.NewRequest(http.MethodGet, h.HTTPURL()+"/api/admin/log-level", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out))
	require.Len(t, out["modules"], len(logsink.Modules))
	require.Less(t, len(raw), 1024, "GET /api/admin/log-level is %d bytes", len(raw))
}
