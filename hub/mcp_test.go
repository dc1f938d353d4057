package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
)

// bearer adds a token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// mcpHTTP connects the SDK's client to the hub's /mcp with token.
func mcpHTTP(t *testing.T, h *testHub, token string) *sdk.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx,
		&sdk.StreamableClientTransport{Endpoint: h.HTTPURL() + "/mcp", HTTPClient: &http.Client{Transport: bearer{token}}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func toolResult(t *testing.T, s *sdk.ClientSession, name string, args any) (map[string]any, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	res, err := s.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	require.NoError(t, err)
	b, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	return out, res.IsError
}

// TestMCPOverHTTPActsWithTheCallersToken: an operator's token submits and
// reads through /mcp; a viewer's reads but cannot call a write tool
// (refused as over any transport, nothing stored); no token, no session.
func TestMCPOverHTTPActsWithTheCallersToken(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	admin := mcpHTTP(t, h, h.token)
	sub, isErr := toolResult(t, admin, "task_submit", map[string]any{"description": "over streamable http"})
	require.False(t, isErr, sub)
	got, isErr := toolResult(t, admin, "task_get", map[string]any{"id": sub["task_id"]})
	require.False(t, isErr, got)
	require.Equal(t, "over streamable http", got["description"])

	viewerToken, _, err := h.tokens.Create(t.Context(), "dash", broker.RoleViewer)
	require.NoError(t, err)
	viewer := mcpHTTP(t, h, viewerToken)
	stats, isErr := toolResult(t, viewer, "task_stats", map[string]any{})
	require.False(t, isErr, stats)
	require.Equal(t, 1.0, stats["total"])
	refused, isErr := toolResult(t, viewer, "task_submit", map[string]any{"description": "not allowed"})
	require.True(t, isErr)
	require.Equal(t, "admin_only", refused["error"])
	require.Equal(t, 403.0, refused["status"])
	require.Equal(t, 1, h.views.Tasks.Stats().Total, "the refused call stored nothing")

	resp, err := http.Post(h.HTTPURL()+"/mcp", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}
