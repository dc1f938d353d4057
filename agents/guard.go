package agents

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/guard"
	"github.com/agentcom/agentcom/protocol"
)

// maxSmallRequest bounds the body of every agent request but complete and
// fail, which may carry a result or an error text (up to max_payload).
const maxSmallRequest = 64 << 10

func newGuard(cfg config.Agents, now func() time.Time) *guard.Guard {
	return guard.New(guard.Config{Rate: cfg.RequestRate, Burst: cfg.RequestBurst,
		Threshold: cfg.ViolationThreshold, Window: cfg.ViolationWindow, Cooldown: cfg.ViolationCooldown,
		LogEvery: cfg.ViolationLogInterval}, now)
}

// screen refuses, before any decoding or store work, a request from an
// agent in its cooldown (drop is set: no answer at all), over its budget,
// with a reply subject not its own, too large, with JetStream headers, or
// of no known verb. ok means the request may go on.
func (c *Coordinator) screen(agentID, verb string, m *nats.Msg) (status int, e protocol.Error, drop, ok bool) {
	if _, refused := c.guard.Refused(agentID); refused {
		return 0, protocol.Error{}, true, false
	}
	v := guard.Violation{Op: verb, Subject: m.Subject}
	switch {
	case !c.guard.Allow(agentID):
		v.Kind, status, e = guard.KindRateLimited, http.StatusTooManyRequests, protocol.Error{Error: protocol.CodeRateLimited,
			Detail: fmt.Sprintf("over the request budget of %g a second (burst %d); slow down", c.conf().RequestRate, c.conf().RequestBurst)}
	case m.Reply != "" && !broker.IsAgentInbox(agentID, m.Reply):
		v.Kind, v.Subject, drop = guard.KindForeignReply, m.Reply, true
	case len(m.Data) > maxRequestBytes(verb):
		v.Kind, status, e = guard.KindTooLarge, http.StatusRequestEntityTooLarge, protocol.Error{Error: protocol.CodeTooLarge,
			Detail: fmt.Sprintf("the body is %d bytes, the limit for %s is %d", len(m.Data), verb, maxRequestBytes(verb))}
	case jetStreamHeader(m.Header) != "":
		v.Kind, status, e = guard.KindForbiddenHeader, http.StatusUnprocessableEntity, protocol.Error{Error: protocol.CodeValidationFailed,
			Detail: "header " + jetStreamHeader(m.Header) + " has no place on an agent request"}
	case !broker.IsAgentVerb(verb):
		v.Kind, status, e = guard.KindUnknownVerb, http.StatusNotFound, protocol.Error{Error: protocol.CodeUnknownVerb,
			Detail: "no agent request " + verb}
	default:
		return 0, protocol.Error{}, false, true
	}
	c.violation(agentID, v)
	return status, e, drop, false
}

func maxRequestBytes(verb string) int {
	if verb == broker.VerbComplete || verb == broker.VerbFail || verb == broker.VerbReport || verb == broker.VerbSend {
		return domain.MaxMessageBytes
	}
	return maxSmallRequest
}

// jetStreamHeader is the first Nats-* header of a request, if any: the
// hub writes its own events, so a rollup or an expected-sequence header
// from an agent is never honoured, and is refused.
func jetStreamHeader(h nats.Header) string {
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			return k
		}
	}
	return ""
}

// violation counts one violation and writes the log line and the event
// the guard asks for; past the threshold it closes the agent's
// connections.
func (c *Coordinator) violation(agentID string, v guard.Violation) {
	if r, now := c.guard.Record(agentID, v); now {
		c.reportViolations(r)
	}
}

// reportViolations writes one summary line and one agent.violation event.
func (c *Coordinator) reportViolations(r guard.Report) {
	e := c.log.Warning().Str("agent_id", r.AgentID).Int("count", r.Count).Interface("kinds", r.Kinds).
		Str("kind", r.Last.Kind).Str("op", r.Last.Op).Str("subject", r.Last.Subject)
	if r.Disconnect {
		e.Int64("cooldown_ms", r.Cooldown.Milliseconds()).Msg("agent disconnected for violations, refused for the cooldown")
		if c.work.Enter() {
			go func() { defer c.work.Leave(); c.srv.DisconnectAgent(r.AgentID, false) }()
		}
	} else {
		e.Msg("agent violations")
	}
	if c.tel != nil {
		c.tel.Emit("agent.violation", map[string]float64{"count": float64(r.Count), "cooldown_ms": float64(r.Cooldown.Milliseconds())},
			map[string]any{"agent_id": r.AgentID, "kind": r.Last.Kind, "op": r.Last.Op, "subject": r.Last.Subject,
				"disconnected": r.Disconnect})
	}
}

// permissionViolation is told by the server of a denied publish or
// subscribe; it runs on the server's goroutine, and only counts.
func (c *Coordinator) permissionViolation(p broker.PermissionViolation) {
	c.violation(p.AgentID, guard.Violation{Kind: guard.KindPermission, Op: p.Op, Subject: p.Subject})
}

// refused reports whether an agent is in its violation cooldown.
func (c *Coordinator) refused(agentID string) bool {
	_, refused := c.guard.Refused(agentID)
	return refused
}

// violationLoop writes the summaries of violations held back, every log
// interval.
func (c *Coordinator) violationLoop() {
	t := time.NewTicker(max(c.conf().ViolationLogInterval, time.Second))
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
			for _, r := range c.guard.Flush() {
				c.reportViolations(r)
			}
		}
	}
}

// refuseRequest answers a screened-out request, into the agent's own
// inbox only.
func (c *Coordinator) refuseRequest(m *nats.Msg, agentID string, status int, e protocol.Error) {
	ctx, cancel := broker.RequestContext(m)
	defer cancel()
	if broker.IsAgentInbox(agentID, m.Reply) {
		_ = broker.Respond(ctx, m, status, e)
	}
}

// malformed says whether a handled request's answer was a refusal of its
// body: a violation.
func malformed(status int) bool { return status == http.StatusUnprocessableEntity }
