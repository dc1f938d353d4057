package hub

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
)

// steppedTimer replaces time.AfterFunc: the test ends each window itself.
type steppedTimer struct {
	mu      sync.Mutex
	pending []func()
}

func (s *steppedTimer) after(_ time.Duration, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, f)
}

// fire ends the windows scheduled so far; it reports how many.
func (s *steppedTimer) fire() int {
	s.mu.Lock()
	fs := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, f := range fs {
		f()
	}
	return len(fs)
}

type refusalRow struct {
	Status int    `json:"status"`
	Route  string `json:"route"`
	Count  int    `json:"count"`
}

// refusalLines are the summaries the hub logged, in order.
func refusalLines(t *testing.T, h *testHub) [][]refusalRow {
	t.Helper()
	var out [][]refusalRow
	for _, line := range h.logs.Lines() {
		var l struct {
			Severity string       `json:"severity"`
			Message  string       `json:"message"`
			Total    int          `json:"total"`
			Refused  []refusalRow `json:"refused"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &l))
		if l.Message != "requests refused" {
			continue
		}
		require.Equal(t, "warning", l.Severity)
		sum := 0
		for _, r := range l.Refused {
			sum += r.Count
		}
		require.Equal(t, l.Total, sum)
		out = append(out, l.Refused)
	}
	return out
}

// TestRefusedAdminRequestsAreSummarisedPerInterval floods the admin routes
// with refused requests (401, 403, 413, 422): the first is logged at
// once, the rest as one warning for the interval with counts by status
// and route; other answers and other routes are not counted, and an
// interval without refusals logs nothing.
func TestRefusedAdminRequestsAreSummarisedPerInterval(t *testing.T) {
	t.Parallel()
	timer := &steppedTimer{}
	h := startHubOpts(t, "", logsink.LevelInfo, hubOpts{refusalTimer: timer.after}, func(c *config.Hub) { c.Log.Level = "info" })
	agent := newTestAgent(t, h, "refused", nil, ignore)

	code, _ := h.do(t, http.MethodGet, "/api/admin/store-health", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, [][]refusalRow{{{401, "GET /api/admin/store-health", 1}}}, refusalLines(t, h), "the first at once")

	flood := []struct {
		method, path, token, body string
		status, n                 int
	}{
		{http.MethodPut, "/api/admin/log-level", "", `{"level":"debug"}`, 401, 300},
		{http.MethodPut, "/api/admin/log-level", agent.token, `{"level":"debug"}`, 403, 200},
		{http.MethodPut, "/api/admin/log-level", h.token, `{"level":"loud"}`, 422, 50},
		{http.MethodPost, "/api/admin/restore", h.token, `{"file":"` + strings.Repeat("x", 1<<20) + `"}`, 413, 3},
		{http.MethodDelete, "/admin/tokens/someone", "bad-token", "", 401, 20},
		{http.MethodPost, "/api/tasks", h.token, `{"description":""}`, 422, 10},        // not an admin route
		{http.MethodPut, "/api/admin/log-level", h.token, `{"level":"info"}`, 200, 10}, // not refused
	}
	for _, f := range flood {
		for range f.n {
			code, _ := h.do(t, f.method, f.path, f.token, f.body)
			require.Equal(t, f.status, code, f.path)
		}
	}
	require.Len(t, refusalLines(t, h), 1, "a flood within the interval logs nothing more yet")

	require.Equal(t, 1, timer.fire())
	lines := refusalLines(t, h)
	require.Len(t, lines, 2)
	require.Equal(t, []refusalRow{
		{401, "DELETE /admin/tokens/{agent_id}", 20},
		{413, "POST /api/admin/restore", 3},
		{401, "PUT /api/admin/log-level", 300},
		{403, "PUT /api/admin/log-level", 200},
		{422, "PUT /api/admin/log-level", 50},
	}, lines[1])

	require.Equal(t, 1, timer.fire(), "the next window was open")
	require.Len(t, refusalLines(t, h), 2, "a quiet interval logs nothing")
	require.Equal(t, 0, timer.fire(), "and closes the window")

	code, _ = h.do(t, http.MethodGet, "/api/admin/log-level", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Len(t, refusalLines(t, h), 3, "after a quiet interval the first is logged at once again")
	code, _ = h.do(t, http.MethodGet, "/api/admin/log-level", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	h.Stop()
	lines = refusalLines(t, h)
	require.Len(t, lines, 4, "what is counted at stop is logged")
	require.Equal(t, []refusalRow{{401, "GET /api/admin/log-level", 1}}, lines[3])
}
