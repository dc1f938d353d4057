package hub

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// opCase is one call of an operation and its answer; {T} in a parameter
// or the body is the transport's name, so that each transport changes a
// thing of its own.
type opCase struct {
	op     ops.Op
	kind   string // success, validation, not found (or what answers in its place)
	params map[string]string
	body   string
	status int
	code   string
}

// newOpCases are the cases of every operation issue 14 added, in an order
// where each success finds what it needs (an override to clear).
var newOpCases = []opCase{
	{ops.OpSchemas, "success", nil, "", 200, ""},
	{ops.OpUsage, "success", map[string]string{"agent_id": "a1"}, "", 200, ""},
	{ops.OpUsage, "validation", map[string]string{"since": "yesterday"}, "", 422, protocol.CodeValidationFailed},
	{ops.OpPushTask, "success", nil, `{"agent_id":"a1","description":"for a1 from {T}"}`, 201, ""},
	{ops.OpPushTask, "validation", nil, `{"agent_id":"a1"}`, 422, protocol.CodeValidationFailed},
	{ops.OpPushTask, "not found", nil, `{"agent_id":"nobody","description":"x"}`, 404, "agent_not_found"},
	{ops.OpAgentReset, "success", map[string]string{"agent_id": "a2"}, "", 200, ""},
	{ops.OpAgentReset, "validation", map[string]string{"agent_id": "a.b"}, "", 422, protocol.CodeValidationFailed},
	{ops.OpAgentReset, "not found", map[string]string{"agent_id": "nobody"}, "", 404, "agent_not_found"},
	{ops.OpRateLimitList, "success", nil, "", 200, ""},
	{ops.OpRateLimitSet, "success", map[string]string{"name": "dash-{T}"}, `{"heavy":5}`, 200, ""},
	{ops.OpRateLimitSet, "validation", map[string]string{"name": "dash-{T}"}, `{"heavy":0}`, 422, protocol.CodeValidationFailed},
	{ops.OpRateLimitClear, "success", map[string]string{"name": "dash-{T}"}, "", 200, ""},
	{ops.OpRateLimitClear, "validation", map[string]string{"name": "a.b"}, "", 422, protocol.CodeValidationFailed},
	{ops.OpRateLimitClear, "not found", map[string]string{"name": "dash-{T}"}, "", 404, "rate_limit_not_found"},
	{ops.OpRateLimitExempt, "success", map[string]string{"name": "bot-{T}"}, "", 200, ""},
	{ops.OpRateLimitExempt, "validation", map[string]string{"name": "a.b"}, "", 422, protocol.CodeValidationFailed},
	{ops.OpRateLimitUnexempt, "success", map[string]string{"name": "bot-{T}"}, "", 200, ""},
	{ops.OpRateLimitUnexempt, "validation", map[string]string{"name": "a.b"}, "", 422, protocol.CodeValidationFailed},
	{ops.OpRateLimitUnexempt, "not found", map[string]string{"name": "bot-{T}"}, "", 404, "rate_limit_not_found"},
	{ops.OpConfigList, "success", nil, "", 200, ""},
	{ops.OpConfigGet, "success", map[string]string{"key": "agents.stuck_threshold"}, "", 200, ""},
	{ops.OpConfigGet, "not found", map[string]string{"key": "agents.nope"}, "", 404, "setting_not_found"},
	{ops.OpConfigSet, "success", map[string]string{"key": "agents.budgets.{T}"}, `{"value":"3"}`, 200, ""},
	{ops.OpConfigSet, "validation", map[string]string{"key": "agents.reconnect_grace"}, `{"value":"0s"}`, 422, protocol.CodeValidationFailed},
	{ops.OpConfigSet, "not found", map[string]string{"key": "agents.nope"}, `{"value":"1"}`, 404, "setting_not_found"},
	{ops.OpConfigReset, "success", map[string]string{"key": "agents.budgets.{T}"}, "", 200, ""},
	{ops.OpConfigReset, "not found", map[string]string{"key": "agents.nope"}, "", 404, "setting_not_found"},
	{ops.OpOnboard, "success", nil, `{"agent_id":"joiner-{T}","capabilities":["go"]}`, 201, ""},
	{ops.OpOnboard, "validation", nil, `{"agent_id":"joiner {T}"}`, 422, protocol.CodeValidationFailed},
	{ops.OpOnboard, "conflict (its not-found)", nil, `{"agent_id":"joiner-{T}"}`, 409, "agent_already_registered"},
	{ops.OpTokenCreate, "success", nil, `{"name":"viewer-{T}","role":"viewer"}`, 201, ""},
	{ops.OpTokenCreate, "validation", nil, `{"name":"v","role":"boss"}`, 422, protocol.CodeValidationFailed},
}

// Every operation issue 14 added, over HTTP and over NATS, on a hub
// listening beyond loopback: a success, a validation error and a not
// found where the operation has them, then each role's refusal.
func TestNewOperationsAnswerEveryCaseOnBothTransports(t *testing.T) {
	t.Parallel()
	f := startRoleFixture(t)
	for name, do := range transports(t, f.h) {
		fill := strings.NewReplacer("{T}", name)
		for _, c := range newOpCases {
			params := map[string]string{}
			for k, v := range c.params {
				params[k] = fill.Replace(v)
			}
			code, out := do(c.op, params, fill.Replace(c.body))
			require.Equal(t, c.status, code, "%s %s over %s: %v", c.op.Name, c.kind, name, out)
			require.Equal(t, c.code, errCode(out), "%s %s over %s", c.op.Name, c.kind, name)
		}
	}
	covered := map[string]map[string]bool{}
	for _, c := range newOpCases {
		if covered[c.op.Name] == nil {
			covered[c.op.Name] = map[string]bool{}
		}
		covered[c.op.Name][c.kind] = true
	}
	for _, op := range newOpCases {
		require.True(t, covered[op.op.Name]["success"], "%s has a success case", op.op.Name)
		if op.op.Request != nil || op.op.Query != nil {
			require.True(t, covered[op.op.Name]["validation"], "%s takes input: it has a validation case", op.op.Name)
		}
	}
	for _, c := range newOpCases {
		for _, caller := range []string{"", "viewer", "agent"} {
			status, needs := expected(c.op, caller)
			if status == 0 {
				continue
			}
			code, out := f.h.do(t, c.op.Method, f.path(c.op), f.tokens[caller], `{}`)
			require.Equal(t, status, code, "%s over HTTP as %q: %v", c.op.Name, caller, out)
			require.Equal(t, needs, out["needs"], "%s over HTTP as %q", c.op.Name, caller)
			if caller == "" {
				continue // NATS takes no connection without a token (TestNATSNeedsAToken)
			}
			var ce *client.CallError
			err := f.natsByCaller[caller].Do(context.Background(), c.op, map[string]string{}, nil)
			require.ErrorAs(t, err, &ce, "%s over NATS as %q", c.op.Name, caller)
			require.Equal(t, status, ce.Status, "%s over NATS as %q: %v", c.op.Name, caller, err)
			require.Equal(t, needs, ce.Body.Needs, "%s over NATS as %q", c.op.Name, caller)
		}
	}
}
