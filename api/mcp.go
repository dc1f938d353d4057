package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/mcp"
	"github.com/agentcom/agentcom/protocol/ops"
)

// MCPRoute serves the hub's MCP tools over streamable HTTP (docs/mcp.md).
const MCPRoute = "/mcp"

// asTool runs an operation made for an MCP tool (tool "" for any other
// request) as an mcp.tool span: the tool, its caller, the outcome (ok, or
// the error word) and the request id, logged as well.
func (a *API) asTool(ctx context.Context, tool string, c call, fn func() Reply) Reply {
	if tool == "" {
		return fn()
	}
	var r Reply
	meta := map[string]any{"tool": tool, "caller": c.who, "request_id": logsink.RequestID(ctx)}
	_ = a.tel.Span("mcp.tool", meta, func() (map[string]any, error) {
		r = fn()
		return map[string]any{"outcome": outcome(r), "status": strconv.Itoa(r.Status)}, nil
	})
	a.log.Ctx(ctx).Info().Str("tool", tool).Str("caller", c.who).Int("status", r.Status).Str("outcome", outcome(r)).
		Msg("mcp tool called")
	return r
}

// outcome is ok for a 2xx reply, else its error word.
func outcome(r Reply) string {
	if r.Status >= 200 && r.Status < 300 {
		return "ok"
	}
	if e, ok := r.Body.(ErrorBody); ok {
		return e.Error
	}
	return strconv.Itoa(r.Status)
}

// mcpHandler serves the MCP tools to the bearer of a known token, as that
// token's caller: every tool call is the operation, checked as over NATS.
func (a *API) mcpHandler() http.Handler {
	version := buildVersion()
	h := sdk.NewStreamableHTTPHandler(func(r *http.Request) *sdk.Server {
		c, _, _ := a.callerOf(ops.OpHealth, bearer(r)) // public: only the identity
		return mcp.NewServer(inProcess{a: a, c: c}, version)
	}, &sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, refusal, ok := a.callerOf(ops.OpTaskList, bearer(r)); !ok || bearer(r) == "" {
			if ok { // open reads: the MCP route still needs a token
				refusal = Reply{http.StatusUnauthorized, ErrorBody{Error: "unauthorized", Needs: "viewer",
					Detail: "the MCP route needs a token", Hint: "provide Authorization: Bearer <token>"}}
			}
			writeJSON(w, refusal)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, int64(bodyLimit(ops.OpTaskSubmitBatch))) // the largest any tool takes
		h.ServeHTTP(w, r)
	})
}

// inProcess calls the API's own handlers as the token's caller.
type inProcess struct {
	a *API
	c call
}

// Call implements mcp.Caller.
func (p inProcess) Call(ctx context.Context, tool string, op ops.Op, body json.RawMessage) (json.RawMessage, error) {
	r := p.a.asTool(ctx, tool, p.c, func() Reply { return p.a.dispatch(ctx, op.Name, p.c, body) })
	out, err := json.Marshal(r.Body)
	if err != nil {
		return nil, err
	}
	if r.Status < 200 || r.Status > 299 {
		ce := &client.CallError{Status: r.Status}
		_ = json.Unmarshal(out, &ce.Body)
		return nil, ce
	}
	return out, nil
}
