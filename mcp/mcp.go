// Package mcp serves the hub as Model Context Protocol tools, built on the
// official Go SDK: each tool is one operation of the table (protocol/ops),
// with the operation's request as its JSON Schema input and its answer as
// the structured result; a refusal is a tool error carrying the hub's error
// word and detail. The same server runs over stdio (agentcom mcp, which
// calls the hub over NATS) and over streamable HTTP at /mcp on the hub
// (which calls the API in process); the caller's token decides what it
// may do, as it does for every other request.
package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// Caller calls one operation with a JSON body (path parameters as fields,
// as over NATS) as tool, and returns the answer's body; a refusal is a
// *client.CallError.
type Caller interface {
	Call(ctx context.Context, tool string, op ops.Op, body json.RawMessage) (json.RawMessage, error)
}

// OperatorOps are the operations an operator's tools call.
var OperatorOps = []ops.Op{
	ops.OpTaskSubmit, ops.OpTaskSubmitBatch, ops.OpTaskList, ops.OpTaskGet, ops.OpTaskStats, ops.OpTaskDeadLetter,
	ops.OpTaskRetry, ops.OpTaskCancel, ops.OpTaskTimeline, ops.OpAgentList, ops.OpAgentGet,
	ops.OpGoalList, ops.OpGoalCreate, ops.OpGoalGet, ops.OpGoalCancel,
	ops.OpScheduleList, ops.OpScheduleCreate, ops.OpScheduleDelete,
	ops.OpAlertList, ops.OpStoreHealth, ops.OpMetricsGet, ops.OpUsage,
	ops.OpMessageSend, ops.OpMessageList, ops.OpThreadGet, ops.OpReservationList,
}

// ToolName is an operation's tool name: its NATS command with _ for .
// (task.submit: task_submit).
func ToolName(op ops.Op) string { return strings.ReplaceAll(op.Name, ".", "_") }

// NewServer returns an MCP server whose tools call c.
func NewServer(c Caller, version string) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "agentcom", Title: "AgentCom hub", Version: version}, nil)
	for _, op := range OperatorOps {
		s.AddTool(&sdk.Tool{Name: ToolName(op), Description: describe(op), InputSchema: ops.ToolSchema(op),
			Annotations: &sdk.ToolAnnotations{ReadOnlyHint: op.Access != ops.Admin}}, handler(c, op))
	}
	return s
}

// describe is a tool's description: the operation's summary and what it
// needs.
func describe(op ops.Op) string {
	needs := "a viewer's or an admin's token"
	if op.Access == ops.Admin {
		needs = "an admin's token"
	}
	return fmt.Sprintf("%s (%s %s; needs %s).", op.Summary, op.Method, op.Path, needs)
}

// handler calls op with the tool's arguments under a request id of its own.
func handler(c Caller, op ops.Op) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		args := req.Params.Arguments
		if len(args) == 0 {
			args = json.RawMessage(`{}`)
		}
		ctx = logsink.WithRequestID(ctx, logsink.NewRequestID())
		body, err := c.Call(ctx, ToolName(op), op, args)
		if err != nil {
			return refused(ctx, err), nil
		}
		return answered(body), nil
	}
}

// answered is a tool's result: the answer as text and as structured
// content (an answer that is not an object, such as a list, under
// "result": structured content is an object).
func answered(body json.RawMessage) *sdk.CallToolResult {
	r := &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: string(body)}}}
	var v any
	if json.Unmarshal(body, &v) == nil {
		if obj, ok := v.(map[string]any); ok {
			r.StructuredContent = obj
		} else {
			r.StructuredContent = map[string]any{"result": v}
		}
	}
	return r
}

// refused is a tool error: the hub's error word, status and detail.
func refused(ctx context.Context, err error) *sdk.CallToolResult {
	out := map[string]any{"error": "call_failed", "detail": err.Error(), "request_id": logsink.RequestID(ctx)}
	var ce *client.CallError
	if errors.As(err, &ce) {
		out["status"], out["error"], out["detail"] = ce.Status, ce.Body.Error, ce.Body.Detail
		if len(ce.Body.Errors) > 0 {
			out["errors"] = ce.Body.Errors
		}
	}
	text, _ := json.Marshal(out) // plain values: it always encodes
	return &sdk.CallToolResult{IsError: true, StructuredContent: out,
		Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("%s: %s", out["error"], text)}}}
}

// NATSCaller calls the hub over NATS with a client's token (agentcom mcp).
type NATSCaller struct{ Client *client.Client }

// Call implements Caller: the command carries the tool's name, for the
// hub's mcp.tool span, and the call's request id.
func (n NATSCaller) Call(ctx context.Context, tool string, op ops.Op, body json.RawMessage) (json.RawMessage, error) {
	var out json.RawMessage
	if err := n.Client.Do(client.WithHeader(ctx, protocol.HeaderMCPTool, tool), op, body, &out); err != nil {
		return nil, err
	}
	return out, nil
}
