package hub

import (
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
	code, out = h.do(t, http.MethodPut, "/api/admin/log-level", h.token, `{"level":"warning","module":"scheduler"}`)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "scheduler", out["module"])
	code, out = h.do(t, http.MethodGet, "/api/admin/log-level", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "debug", out["level"])
	require.Equal(t, map[string]any{"scheduler": "warning"}, out["modules"])

	for _, body := range []string{`{"level":"loud"}`, `{"level":3}`, `not json`, `{}`} {
		code, out = h.do(t, http.MethodPut, "/api/admin/log-level", h.token, body)
		require.Equal(t, http.StatusUnprocessableEntity, code, body)
		require.Equal(t, []any{"debug", "info", "notice", "warning", "error"}, out["valid_levels"], body)
	}
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
