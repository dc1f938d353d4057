package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol/ops"
)

// adminAPI holds what the token routes need, and the connection that
// reads back telemetry.
type adminAPI struct {
	tokens *broker.TokenStore
	srv    *broker.Server
	nc     *nats.Conn
}

// Agents lists every agent with its state machine.
func (a *API) Agents() Reply {
	agents := a.agents.List()
	return Reply{http.StatusOK, ops.AgentList{Agents: agents, Count: len(agents)}}
}

// Agent returns one agent's state.
func (a *API) Agent(id string) Reply {
	ag, _, ok := a.agents.Get(id)
	if !ok {
		return Reply{http.StatusNotFound, ErrorBody{Error: "agent_not_found", Detail: id}}
	}
	return Reply{http.StatusOK, ag}
}

// CreateToken makes a token for {"agent_id": ...}; it replaces any earlier
// one of that agent. The token is shown once.
func (a *API) CreateToken(ctx context.Context, body []byte) Reply {
	var req ops.TokenRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"agent_id": "a1"}`))
	}
	if err := domain.CheckAgentID(req.AgentID); err != nil {
		return a.errorReply(ctx, fieldErr("agent_id", "invalid", err.Error()))
	}
	token, rec, err := a.admin.tokens.CreateAgent(ctx, req.AgentID)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	// Connections made with a replaced token close: a rotation locks out
	// whoever held the old one.
	a.admin.srv.DisconnectAgent(req.AgentID, false)
	a.log.Ctx(ctx).Notice().Str("agent_id", req.AgentID).Str("fingerprint", rec.Hash[:12]).Msg("agent token created")
	return Reply{http.StatusCreated, ops.TokenCreated{AgentID: req.AgentID, Token: token}}
}

// ListTokens lists agent tokens by prefix.
func (a *API) ListTokens(ctx context.Context) Reply {
	recs, err := a.admin.tokens.List(ctx)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	out := make([]ops.TokenView, len(recs))
	for i, r := range recs {
		out[i] = ops.TokenView{AgentID: r.Name, TokenPrefix: r.Prefix + "...", CreatedAt: r.CreatedAt.Format("2006-01-02T15:04:05Z07:00")}
	}
	return Reply{http.StatusOK, ops.TokenList{Tokens: out, Count: len(out)}}
}

// RevokeToken deletes an agent's token and closes its connections.
func (a *API) RevokeToken(ctx context.Context, agentID string) Reply {
	if err := domain.CheckAgentID(agentID); err != nil {
		return a.errorReply(ctx, fieldErr("agent_id", "invalid", err.Error()))
	}
	err := a.admin.tokens.RevokeAgent(ctx, agentID)
	if errors.Is(err, broker.ErrNoToken) {
		return Reply{http.StatusNotFound, ErrorBody{Error: "token_not_found", Detail: agentID}}
	} else if err != nil {
		return a.errorReply(ctx, err)
	}
	closed := a.admin.srv.DisconnectAgent(agentID, false)
	a.log.Ctx(ctx).Notice().Str("agent_id", agentID).Int("connections_closed", closed).Msg("agent token revoked")
	return Reply{http.StatusOK, ops.TokenRevoked{Status: "revoked", AgentID: agentID}}
}

func fieldErr(field, code, detail string) error {
	v := &domain.ValidationError{}
	v.Add(field, code, detail)
	return v
}
