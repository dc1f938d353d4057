package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/protocol/ops"
)

// Onboard registers a new agent (the original's POST
// /api/onboard/register, behind an admin token here): its first token, by
// the token bucket's create-if-absent, and a sidecar configuration that
// runs it. A name that has a token already is 409: rotating a token is
// token create's, not onboarding's.
func (a *API) Onboard(ctx context.Context, who string, body []byte) Reply {
	req, err := decodeOnboard(body)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	token, rec, err := a.admin.tokens.Register(ctx, req.AgentID)
	if errors.Is(err, broker.ErrRegistered) || errors.Is(err, broker.ErrNameTaken) {
		return Reply{http.StatusConflict, ErrorBody{Error: "agent_already_registered", Detail: err.Error(),
			Hint: "agentcom token create " + req.AgentID + " makes it a new token"}}
	} else if err != nil {
		return a.errorReply(ctx, err)
	}
	out := ops.Onboarded{AgentID: req.AgentID, Token: token, NATSURL: reachable(a.admin.srv.ClientURL()),
		HubAPIURL: reachable(a.httpURL), DefaultRepo: a.settings.Current().Agents.DefaultRepo}
	out.SidecarConfig = sidecarConfig(req, out)
	a.log.Ctx(ctx).Notice().Str("agent_id", req.AgentID).Strs("capabilities", req.Capabilities).Str("by", who).
		Str("fingerprint", rec.Hash[:12]).Msg("agent onboarded")
	return Reply{http.StatusCreated, out}
}

func decodeOnboard(body []byte) (ops.OnboardRequest, error) {
	var req ops.OnboardRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return req, badBody(`the body must be a JSON object such as {"agent_id": "a1", "capabilities": ["go"]}`)
	}
	v := &domain.ValidationError{}
	if err := domain.CheckAgentID(req.AgentID); err != nil {
		v.Add("agent_id", "invalid", err.Error())
	}
	domain.ValidateCapabilities(v, "capabilities", req.Capabilities)
	if req.Exec != "" && req.Wake != "" {
		v.Add("wake", "conflict", "give exec or wake, not both")
	}
	if req.MaxTasks < 0 || req.MaxTasks > domain.MaxAgentTasks {
		v.Add("max_tasks", "out_of_range", fmt.Sprintf("max_tasks must be between 1 and %d (0: one)", domain.MaxAgentTasks))
	}
	return req, v.Err()
}

// sidecarConfig is a sidecar's YAML configuration for the new agent. The
// values are JSON strings, which YAML reads as they are.
func sidecarConfig(req ops.OnboardRequest, o ops.Onboarded) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	caps, _ := json.Marshal(append([]string{}, req.Capabilities...))
	var b strings.Builder
	fmt.Fprintf(&b, "# The sidecar of agent %s: agentcom sidecar --config FILE. It holds the agent's token: keep it private.\n",
		req.AgentID)
	fmt.Fprintf(&b, "agent_id: %s\ntoken: %s\nhub: %s\ncapabilities: %s\nmax_tasks: %d\n",
		q(req.AgentID), q(o.Token), q(o.NATSURL), caps, max(req.MaxTasks, 1))
	if strings.HasPrefix(o.NATSURL, "tls://") {
		b.WriteString("# The hub speaks TLS: name the CA file that signed its certificate, unless the system trusts it.\n# tls_ca: ca.pem\n")
	}
	if o.DefaultRepo != "" {
		fmt.Fprintf(&b, "# The hub's default repository (agents.default_repo): %s\n", o.DefaultRepo)
	}
	switch {
	case req.Exec != "":
		fmt.Fprintf(&b, "exec: %s\n", q(req.Exec))
	case req.Wake != "":
		fmt.Fprintf(&b, "wake: %s\nresults_dir: %s\n", q(req.Wake), q("results-"+req.AgentID))
	default:
		b.WriteString("# What runs each task: exec, a shell command (the task arrives in AGENTCOM_TASK_* variables),\n" +
			"# or wake, which wakes the agent and waits for its result file. Set one before starting.\n" +
			"exec: \"\"\n")
	}
	return b.String()
}

// reachable replaces a URL's unspecified host (0.0.0.0, ::), where the
// hub listens on every address, with this machine's name, which another
// machine can dial.
func reachable(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsUnspecified() {
		return raw
	}
	host, err := os.Hostname()
	if err != nil {
		return raw
	}
	u.Host = net.JoinHostPort(host, u.Port())
	return u.String()
}
