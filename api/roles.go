package api

import (
	"net/http"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol/ops"
)

// permit decides whether c may call op, and if not, the refusal: 401
// when a token is needed and none was given, 403 when the token's role
// is not enough. Each names the role needed. A caller without a token
// (role "") may call Public ops, and Read ops while reads are open.
func (a *API) permit(op ops.Op, c call) (Reply, bool) {
	switch {
	case op.Access == ops.Public:
		return Reply{}, true
	case c.role == "" && op.Access == ops.Read && a.openReads:
		return Reply{}, true
	case c.role == "":
		return Reply{http.StatusUnauthorized, ErrorBody{Error: "unauthorized", Needs: op.Needs(),
			Detail: op.Name + " needs " + article(op.Needs()) + " token", Hint: "provide Authorization: Bearer <token>"}}, false
	case c.role == broker.RoleAdmin || c.role == broker.RoleHub:
		return Reply{}, true
	case op.Access == ops.Admin:
		return Reply{http.StatusForbidden, ErrorBody{Error: "admin_only", Needs: "admin",
			Detail: op.Name + " needs an admin token, not " + article(string(c.role)) + "'s"}}, false
	case c.role == broker.RoleViewer || (c.role == broker.RoleAgent && op.Agents):
		return Reply{}, true
	}
	return Reply{http.StatusForbidden, ErrorBody{Error: "forbidden", Needs: "viewer",
		Detail: op.Name + " needs a viewer or admin token, not " + article(string(c.role)) + "'s"}}, false
}

func article(role string) string {
	if role == "admin" || role == "agent" {
		return "an " + role
	}
	return "a " + role
}

// agent returns the agent a call comes from, when its token is an
// agent's: its reads hold only what concerns that agent.
func (c call) agent() (string, bool) { return c.who, c.role == broker.RoleAgent }

// concerns reports whether a task concerns an agent: the agent holds it,
// or its history names the agent (it held it once).
func concerns(t *domain.Task, agentID string) bool {
	if t.AssignedTo == agentID {
		return true
	}
	for _, h := range t.History {
		if h.AgentID == agentID {
			return true
		}
	}
	return false
}

// notYours refuses an agent a read of what does not concern it.
func notYours(what string) Reply {
	return Reply{http.StatusForbidden, ErrorBody{Error: "forbidden", Needs: "viewer",
		Detail: what + " does not concern this agent: reading it needs a viewer or admin token"}}
}
