package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
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
	seen := map[string]time.Time{}
	for _, ag := range agents {
		if a.operator == nil {
			break
		}
		if t, ok := a.operator.LastSeen(ag.ID); ok {
			seen[ag.ID] = t.UTC()
		}
	}
	return Reply{http.StatusOK, ops.AgentList{Agents: agents, Count: len(agents), LastSeen: seen}}
}

// Agent returns one agent's state.
func (a *API) Agent(id string) Reply {
	ag, _, ok := a.agents.Get(id)
	if !ok {
		return Reply{http.StatusNotFound, ErrorBody{Error: "agent_not_found", Detail: id}}
	}
	return Reply{http.StatusOK, ag}
}

// ResetAgent takes back the tasks an agent holds and clears its flag.
func (a *API) ResetAgent(ctx context.Context, agentID string) Reply {
	if err := domain.CheckAgentID(agentID); err != nil {
		return a.errorReply(ctx, fieldErr("agent_id", "invalid", err.Error()))
	}
	out, err := a.operator.Reset(ctx, agentID)
	var nf *domain.AgentNotFoundError
	if errors.As(err, &nf) {
		return Reply{http.StatusNotFound, ErrorBody{Error: "agent_not_found", Detail: agentID}}
	} else if err != nil {
		return a.errorReply(ctx, err)
	}
	return Reply{http.StatusOK, out}
}

// PushTask submits a task that only {"agent_id"} may run: a submit body
// whose needed capabilities gain the agent's pin capability. The agent
// must be known; the task waits in the queue while it is offline or busy.
func (a *API) PushTask(ctx context.Context, who string, body []byte) Reply {
	ctx = logsink.Traced(ctx) // the answer tells its own task from an earlier submit's by it
	var req struct {
		AgentID string `json:"agent_id"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"agent_id": "a1", "description": "..."}`))
	}
	if err := domain.CheckAgentID(req.AgentID); err != nil {
		return a.errorReply(ctx, fieldErr("agent_id", "invalid", err.Error()))
	}
	cmd, err := decodeSubmit(body, a.now())
	if err != nil {
		return a.errorReply(ctx, err)
	}
	if _, _, ok := a.agents.Get(req.AgentID); !ok {
		return Reply{http.StatusNotFound, ErrorBody{Error: "agent_not_found", Detail: req.AgentID}}
	}
	cmd.NeededCapabilities = append(cmd.NeededCapabilities, domain.PinCapability(req.AgentID))
	t, err := a.submit(ctx, who, cmd)
	if err != nil {
		return a.goalError(ctx, err)
	}
	return Reply{http.StatusCreated, ops.PushedTask{AgentID: req.AgentID, Submitted: submitted(ctx, t)}}
}

// CreateToken makes a token for {"agent_id": ...} or {"name": ...,
// "role": ...}; it replaces any earlier one of that name and role, and
// closes the connections made with it. The token is shown once.
func (a *API) CreateToken(ctx context.Context, body []byte) Reply {
	name, role, err := decodeTokenRequest(body)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	token, rec, err := a.admin.tokens.Create(ctx, name, role)
	if errors.Is(err, broker.ErrNameTaken) {
		return Reply{http.StatusConflict, ErrorBody{Error: "token_name_taken", Detail: err.Error(),
			Hint: "revoke that token first, or choose another name"}}
	} else if err != nil {
		return a.errorReply(ctx, err)
	}
	// Connections made with a replaced token close: a rotation locks out
	// whoever held the old one.
	a.admin.srv.DisconnectToken(rec)
	a.log.Ctx(ctx).Notice().Str("name", name).Str("role", string(role)).Str("fingerprint", rec.Hash[:12]).
		Msg("token created")
	return Reply{http.StatusCreated, ops.TokenCreated{AgentID: agentOf(rec), Name: name, Role: string(role), Token: token}}
}

// decodeTokenRequest reads a token create's name and role (agent when
// none is given). A name is an agent id's shape whatever the role: one
// subject token.
func decodeTokenRequest(body []byte) (string, broker.Role, error) {
	var req ops.TokenRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return "", "", badBody(`the body must be a JSON object such as {"agent_id": "a1"} or {"name": "dash", "role": "viewer"}`)
	}
	role := broker.Role(req.Role)
	if role == "" {
		role = broker.RoleAgent
	}
	if !slices.Contains(broker.TokenRoles, role) {
		return "", "", fieldErr("role", "invalid", fmt.Sprintf("unknown role %q: use agent, viewer or admin", req.Role))
	}
	name := cmp.Or(req.Name, req.AgentID)
	field := "name"
	if req.Name == "" {
		field = "agent_id"
	}
	if req.Name != "" && req.AgentID != "" && req.Name != req.AgentID {
		return "", "", fieldErr("agent_id", "invalid", "give name or agent_id, not two different names")
	}
	if err := domain.CheckAgentID(name); err != nil {
		return "", "", fieldErr(field, "invalid", err.Error())
	}
	if name == "admin" && role == broker.RoleAdmin {
		return "", "", fieldErr(field, "invalid", `"admin" is the admin.token file's: rotate it by deleting the file and restarting the hub`)
	}
	return name, role, nil
}

// agentOf is an agent token's agent id, "" for other roles.
func agentOf(rec broker.TokenRecord) string {
	if rec.Role == broker.RoleAgent {
		return rec.Name
	}
	return ""
}

// ListTokens lists the named tokens by prefix.
func (a *API) ListTokens(ctx context.Context) Reply {
	recs, err := a.admin.tokens.List(ctx)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	out := make([]ops.TokenView, len(recs))
	for i, r := range recs {
		out[i] = ops.TokenView{AgentID: agentOf(r), Name: r.Name, Role: string(r.Role), TokenPrefix: r.Prefix + "...",
			CreatedAt: r.CreatedAt.Format("2006-01-02T15:04:05Z07:00")}
	}
	return Reply{http.StatusOK, ops.TokenList{Tokens: out, Count: len(out)}}
}

// RevokeToken deletes the token of a name (an agent's, a viewer's or a
// named admin's) and closes its connections.
func (a *API) RevokeToken(ctx context.Context, name string) Reply {
	if err := domain.CheckAgentID(name); err != nil {
		return a.errorReply(ctx, fieldErr("agent_id", "invalid", err.Error()))
	}
	rec, err := a.admin.tokens.Revoke(ctx, name)
	if errors.Is(err, broker.ErrNoToken) {
		return Reply{http.StatusNotFound, ErrorBody{Error: "token_not_found", Detail: name}}
	} else if err != nil {
		return a.errorReply(ctx, err)
	}
	closed := a.admin.srv.DisconnectToken(rec)
	a.log.Ctx(ctx).Notice().Str("name", name).Str("role", string(rec.Role)).Int("connections_closed", closed).
		Msg("token revoked")
	return Reply{http.StatusOK, ops.TokenRevoked{Status: "revoked", AgentID: agentOf(rec), Name: name, Role: string(rec.Role)}}
}

func fieldErr(field, code, detail string) error {
	v := &domain.ValidationError{}
	v.Add(field, code, detail)
	return v
}
