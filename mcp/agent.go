package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// Relay calls one verb of the agent's sidecar relay with a JSON body for
// tool and returns the answer; a refusal is a *client.CallError.
type Relay func(ctx context.Context, tool, verb string, body json.RawMessage) (json.RawMessage, error)

// agentTool is one of an agent's tools: a verb of its sidecar's relay,
// with the body that verb takes.
type agentTool struct {
	name, verb, description string
	body                    reflect.Type
}

// taskReport is what the task tools take: the task (the only one the
// sidecar holds, when left out) and the report's fields.
type taskReport struct {
	TaskID  string          `json:"task_id,omitempty"`
	Message string          `json:"message,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Usage   *protocol.Usage `json:"usage,omitempty"`
	Error   string          `json:"error,omitempty"`
}

type noInput struct{}

// AgentToolNames are the agent's tools, in the order they are listed.
var AgentToolNames []string

var agentTools = []agentTool{
	{"task_current", "task", "The tasks this agent works on now: id, generation, description, metadata and the results of the tasks they depended on", reflect.TypeFor[noInput]()},
	{"task_progress", broker.VerbProgress, "Report progress on the task (it renews the task's lease; message is shown with it)", reflect.TypeFor[taskReport]()},
	{"task_complete", broker.VerbComplete, "Complete the task with its result (any JSON) and what it cost (usage); the sidecar then ends the task's command", reflect.TypeFor[taskReport]()},
	{"task_fail", broker.VerbFail, "Fail the task with an error (it is retried after a backoff, then dead-lettered); the sidecar then ends the task's command", reflect.TypeFor[taskReport]()},
	{"agent_blocked", broker.VerbBlocked, "Mark this agent blocked on its task (task_id, reason): it gets no more work until unblocked", reflect.TypeFor[protocol.TaskRef]()},
	{"agent_unblocked", broker.VerbUnblocked, "Mark this agent unblocked on its task", reflect.TypeFor[protocol.TaskRef]()},
	{"message_send", broker.VerbSend, "Send a message to an agent (to), a channel, or every agent (neither)", reflect.TypeFor[protocol.Send]()},
	{"inbox_read", broker.VerbInbox, "The messages in this agent's inbox, not yet acknowledged", reflect.TypeFor[noInput]()},
	{"inbox_ack", broker.VerbAck, "Acknowledge the inbox up to a message's seq", reflect.TypeFor[protocol.Ack]()},
	{"channel_join", broker.VerbJoin, "Join a channel", reflect.TypeFor[protocol.ChannelRef]()},
	{"channel_leave", broker.VerbLeave, "Leave a channel", reflect.TypeFor[protocol.ChannelRef]()},
	{"channel_history", broker.VerbHistory, "A channel's last messages", reflect.TypeFor[protocol.ChannelRef]()},
	{"files_reserve", broker.VerbReserve, "Reserve paths or globs of a project, exclusive or shared, for ttl_s seconds (409 names the holders in the way)", reflect.TypeFor[protocol.Reserve]()},
	{"files_renew", broker.VerbRenew, "Renew one of this agent's reservations", reflect.TypeFor[protocol.ReservationRef]()},
	{"files_release", broker.VerbRelease, "Release one of this agent's reservations", reflect.TypeFor[protocol.ReservationRef]()},
}

func init() {
	for _, t := range agentTools {
		AgentToolNames = append(AgentToolNames, t.name)
	}
}

// NewAgentServer returns an MCP server of an agent's tools, every one a
// call to its sidecar's relay, so the agent acts under its own identity
// and no token is handed to the agent's program.
func NewAgentServer(relay Relay, version string) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "agentcom-agent", Title: "AgentCom agent", Version: version}, nil)
	for _, t := range agentTools {
		s.AddTool(&sdk.Tool{Name: t.name, Description: t.description, InputSchema: ops.TypeSchema(t.body),
			Annotations: &sdk.ToolAnnotations{ReadOnlyHint: t.verb == "task" || t.verb == broker.VerbInbox ||
				t.verb == broker.VerbHistory}}, agentHandler(relay, t.name, t.verb))
	}
	for _, r := range agentResources {
		s.AddResource(&sdk.Resource{URI: r.uri, Name: r.name, Description: r.description, MIMEType: "application/json"},
			resourceHandler(relay, r.verb))
	}
	return s
}

// agentResources are what an agent reads as resources: its task and its
// inbox, as the task_current and inbox_read tools answer them.
var agentResources = []struct{ uri, name, verb, description string }{
	{"agentcom://task", "task", "task", "The tasks this agent works on now, with their dependencies' results"},
	{"agentcom://inbox", "inbox", broker.VerbInbox, "This agent's unacknowledged messages"},
}

func resourceHandler(relay Relay, verb string) sdk.ResourceHandler {
	return func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		body, err := relay(logsink.WithRequestID(ctx, logsink.NewRequestID()), "", verb, json.RawMessage(`{}`))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", req.Params.URI, err)
		}
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI,
			MIMEType: "application/json", Text: string(body)}}}, nil
	}
}

func agentHandler(relay Relay, tool, verb string) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		args := req.Params.Arguments
		if len(args) == 0 {
			args = json.RawMessage(`{}`)
		}
		ctx = logsink.WithRequestID(ctx, logsink.NewRequestID())
		body, err := relay(ctx, tool, verb, args)
		if err != nil {
			return refused(ctx, err), nil
		}
		return answered(body), nil
	}
}
