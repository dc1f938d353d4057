package agents

import (
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
	"github.com/agentcom/agentcom/guard"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol"
)

// receive handles one agent request on its own goroutine. The agent's
// identity is the subject's third token: its permissions let it publish
// only there.
func (c *Coordinator) receive(m *nats.Msg) {
	agentID, verb, ok := broker.ParseAgentRequest(m.Subject)
	if !ok {
		return
	}
	if status, e, drop, ok := c.screen(agentID, verb, m); !ok {
		if !drop {
			c.refuseRequest(m, agentID, status, e)
		}
		return
	}
	if !c.work.Enter() {
		return
	}
	go func() {
		defer c.work.Leave()
		ctx, cancel := broker.RequestContext(m)
		defer cancel()
		c.presence.touch(agentID, c.now())
		status, body := c.handleAsTool(ctx, m.Header.Get(protocol.HeaderMCPTool), agentID, verb, m.Data)
		if malformed(status) {
			c.violation(agentID, guard.Violation{Kind: guard.KindMalformed, Op: verb, Subject: m.Subject})
		}
		c.reply(ctx, m, agentID, status, body)
	}()
}

// handleAsTool handles a request made for an agent's MCP tool (tool ""
// for any other) as an mcp.tool span, as the API does an operator's.
func (c *Coordinator) handleAsTool(ctx context.Context, tool, agentID, verb string, data []byte) (int, any) {
	if tool == "" {
		return c.handle(ctx, agentID, verb, data)
	}
	var status int
	var body any
	meta := map[string]any{"tool": tool, "caller": agentID, "request_id": logsink.RequestID(ctx)}
	_ = c.tel.Span("mcp.tool", meta, func() (map[string]any, error) {
		status, body = c.handle(ctx, agentID, verb, data)
		outcome := "ok"
		if e, ok := body.(protocol.Error); ok && status >= 300 {
			outcome = e.Error
		}
		return map[string]any{"outcome": outcome, "status": fmt.Sprint(status)}, nil
	})
	c.log.Ctx(ctx).Info().Str("tool", tool).Str("agent_id", agentID).Int("status", status).Msg("mcp tool called")
	return status, body
}

func (c *Coordinator) reply(ctx context.Context, m *nats.Msg, agentID string, status int, body any) {
	// Answer only into the agent's own inbox: the hub's connection may
	// publish anywhere, so a reply subject of the agent's choosing must
	// never steer it (onto the event stream, or another agent's subjects).
	if !broker.IsAgentInbox(agentID, m.Reply) {
		return // no reply asked for; a foreign one was screened out
	}
	if err := broker.Respond(ctx, m, status, body); err != nil {
		c.log.Ctx(ctx).Warning().Err(err).Str("agent_id", agentID).Msg("agent reply not sent")
	}
}

// handle dispatches one verb.
func (c *Coordinator) handle(ctx context.Context, agentID, verb string, data []byte) (int, any) {
	switch verb {
	case broker.VerbHello:
		return decodeThen(data, func(h protocol.Hello) (int, any) { return c.hello(ctx, agentID, h) })
	case broker.VerbHeartbeat:
		return decodeThen(data, func(h protocol.Heartbeat) (int, any) { return c.heartbeat(ctx, agentID, h) })
	case broker.VerbBye:
		return decodeThen(data, func(h protocol.Heartbeat) (int, any) {
			if h.Session == "" {
				return http.StatusUnprocessableEntity, protocol.Error{Error: protocol.CodeValidationFailed, Detail: "session is required"}
			}
			return c.result(c.svc.ExecuteAgent(ctx, domain.DisconnectAgent{ID: agentID, Session: h.Session, Reason: "bye"}))
		})
	case broker.VerbAccept, broker.VerbDecline, broker.VerbProgress, broker.VerbComplete, broker.VerbFail:
		return c.report(ctx, agentID, verb, data)
	case broker.VerbReport:
		return decodeThen(data, func(rs protocol.Reports) (int, any) { return c.reports(ctx, agentID, rs) })
	case broker.VerbBlocked, broker.VerbUnblocked:
		return decodeThen(data, func(r protocol.TaskRef) (int, any) {
			var cmd domain.AgentCommand = domain.BlockAgent{ID: agentID, TaskID: r.TaskID, Reason: logsink.ScrubText(r.Reason)}
			if verb == broker.VerbUnblocked {
				cmd = domain.UnblockAgent{ID: agentID, TaskID: r.TaskID}
			}
			a, err := c.svc.ExecuteAgent(ctx, cmd)
			if err != nil {
				c.log.Ctx(ctx).Info().Err(err).Str("agent_id", agentID).Str("verb", verb).Msg("agent transition refused")
				return c.result(nil, err)
			}
			return http.StatusOK, map[string]any{"status": "ok", "fsm_state": a.State}
		})
	case broker.VerbReserve, broker.VerbRenew, broker.VerbRelease:
		if c.reserved != nil {
			return c.reservation(ctx, agentID, verb, data)
		}
	case broker.VerbSend, broker.VerbInbox, broker.VerbAck, broker.VerbJoin, broker.VerbLeave, broker.VerbHistory:
		if c.messages != nil {
			return c.message(ctx, agentID, verb, data)
		}
	}
	return http.StatusNotFound, protocol.Error{Error: protocol.CodeUnknownVerb, Detail: "no agent request " + verb}
}

// reportBody is the body of every verb about one assignment of a task.
type reportBody struct {
	protocol.Complete
	Message string             `json:"message"`
	Error   string             `json:"error"`
	Reason  string             `json:"reason"`
	Holding []protocol.Holding `json:"holding"`
}

// report handles the verbs about one assignment of a task.
func (c *Coordinator) report(ctx context.Context, agentID, verb string, data []byte) (int, any) {
	var r reportBody
	if err := json.Unmarshal(data, &r); err != nil || !domain.ValidTaskID(r.TaskID) {
		return http.StatusUnprocessableEntity, protocol.Error{Error: protocol.CodeValidationFailed, Detail: "the body must name task_id and generation"}
	}
	t, err := c.reportOne(ctx, agentID, verb, r)
	if err != nil {
		c.log.Ctx(ctx).Info().Err(err).Str("agent_id", agentID).Str("task_id", r.TaskID).Str("verb", verb).Msg("agent report refused")
		return c.result(nil, err)
	}
	c.log.Ctx(ctx).Info().Str("agent_id", agentID).Str("task_id", r.TaskID).Str("verb", verb).
		Str("status", string(t.Status)).Msg("agent report")
	return http.StatusOK, map[string]any{"status": t.Status, "task_id": t.ID, "generation": t.Generation}
}

// reportOne runs one report's command.
func (c *Coordinator) reportOne(ctx context.Context, agentID, verb string, r reportBody) (*domain.Task, error) {
	// Free text is stored and shown: it keeps no more secrets than a log line.
	r.Message, r.Error, r.Reason = logsink.ScrubText(r.Message), logsink.ScrubText(r.Error), logsink.ScrubText(r.Reason)
	var cmd domain.Command
	switch verb {
	case broker.VerbAccept:
		cmd = domain.AcceptTask{ID: r.TaskID, AgentID: agentID, Generation: r.Generation}
	case broker.VerbDecline:
		c.declined(ctx, agentID, protocol.Decline{TaskID: r.TaskID, Generation: r.Generation, Reason: r.Reason, Holding: r.Holding})
		cmd = domain.DeclineTask{ID: r.TaskID, AgentID: agentID, Generation: r.Generation, Reason: r.Reason}
	case broker.VerbProgress:
		cmd = domain.ReportProgress{ID: r.TaskID, AgentID: agentID, Generation: r.Generation, Message: r.Message}
	case broker.VerbComplete:
		cmd = domain.CompleteTask{ID: r.TaskID, AgentID: agentID, Generation: r.Generation, Result: r.Result,
			Usage: (*domain.Usage)(r.Usage)}
	case broker.VerbFail:
		cmd = domain.FailTask{ID: r.TaskID, AgentID: agentID, Generation: r.Generation, Error: r.Error,
			Backoff: c.backoff, Jitter: c.jitter()}
	}
	return c.svc.Execute(ctx, cmd)
}

// hello identifies an agent, settles each task it says it holds (continue
// or abort) and takes back any task the hub thinks it holds but it lost.
// What the agent holds is settled before it can be given work: the
// scheduler leaves the agent alone until the hello is done, and the lost
// tasks are taken back before agent.connected makes the agent idle.
func (c *Coordinator) hello(ctx context.Context, agentID string, h protocol.Hello) (int, any) {
	if h.Session == "" {
		return http.StatusUnprocessableEntity, protocol.Error{Error: protocol.CodeValidationFailed, Detail: "session is required"}
	}
	if c.presence.replaced(agentID, h.Session) {
		return http.StatusConflict, protocol.Error{Error: protocol.CodeSessionReplaced,
			Detail: "a newer connection of this agent took over; stop this sidecar"}
	}
	connect := domain.ConnectAgent{ID: agentID, Name: h.Name, Session: h.Session, Capabilities: h.Capabilities,
		MaxTasks: h.MaxTasks, Batch: h.Batch, ImpliedAccept: h.ImpliedAccept}
	if _, err := connect.DecideAgent(nil, c.now()); err != nil { // refused before anything changes
		return c.result(nil, err)
	}
	holdings := h.Holdings()
	if len(holdings) > domain.MaxAgentTasks {
		return http.StatusUnprocessableEntity, protocol.Error{Error: protocol.CodeValidationFailed,
			Detail: fmt.Sprintf("held lists %d tasks, at most %d", len(holdings), domain.MaxAgentTasks)}
	}
	release := c.sched.hold(agentID)
	defer release()
	reply := c.helloReply()
	accepts := c.settleHoldings(holdings, &connect, &reply)
	c.reclaimLost(ctx, agentID, connect.Tasks)
	prev, _, _ := c.views.Agents.Get(agentID)
	a, err := c.svc.ExecuteAgent(ctx, connect)
	if err != nil {
		return c.result(nil, err)
	}
	for _, accept := range accepts {
		_, _ = c.svc.Execute(ctx, accept)
	}
	if a.Unresponsive {
		_, _ = c.svc.ExecuteAgent(ctx, domain.UnflagAgent{ID: agentID})
	}
	c.replaceOlder(prev, h.Session)
	e := c.log.Ctx(ctx).Info().Str("agent_id", agentID).Strs("capabilities", connect.Capabilities).
		Int("max_tasks", a.Slots()).Int("held", len(holdings)).Int("resumed", len(connect.Tasks))
	if len(reply.Tasks) == 1 {
		e = e.Str("task_id", reply.Tasks[0].TaskID).Str("action", reply.Tasks[0].Action)
	}
	e.Msg("agent connected")
	return http.StatusOK, reply
}

// replaceOlder closes the connections of the agent's earlier session, if
// the hello came with a new one: the newest connection wins.
func (c *Coordinator) replaceOlder(prev *domain.Agent, session string) {
	if prev == nil || prev.Session == session {
		return
	}
	if prev.Online() {
		c.presence.replace(prev.ID, prev.Session)
	}
	c.srv.DisconnectAgent(prev.ID, true)
}

// helloReply is the answer to every hello before its holding is settled.
func (c *Coordinator) helloReply() protocol.HelloReply {
	return protocol.HelloReply{Timings: c.timings()}
}

// timings are the intervals in force that sidecars keep to.
func (c *Coordinator) timings() protocol.Timings {
	cfg := c.conf()
	return protocol.Timings{HeartbeatIntervalMS: cfg.HeartbeatInterval.Milliseconds(),
		StuckThresholdMS:   cfg.StuckThreshold.Milliseconds(),
		ProgressIntervalMS: (cfg.StuckThreshold / protocol.ProgressDivisor).Milliseconds()}
}

// reclaimLost takes back every task the hub thinks the agent holds but
// its hello does not resume (keep).
func (c *Coordinator) reclaimLost(ctx context.Context, agentID string, keep []domain.HeldTask) {
	kept := func(id string) bool {
		return slices.ContainsFunc(keep, func(h domain.HeldTask) bool { return h.ID == id })
	}
	for _, s := range []domain.Status{domain.StatusAssigned, domain.StatusWorking} {
		for _, t := range c.views.Tasks.List(projections.Filter{AssignedTo: agentID, Status: s}) {
			if !kept(t.ID) {
				c.reclaim(ctx, t, ReasonAgentLostTask)
			}
		}
	}
}

// settleHoldings decides continue or abort for each task a hello reports,
// and returns the accepts to record for tasks the agent had started whose
// acceptance the hub never stored.
func (c *Coordinator) settleHoldings(holdings []protocol.Holding, connect *domain.ConnectAgent,
	reply *protocol.HelloReply) []domain.AcceptTask {
	var accepts []domain.AcceptTask
	for _, h := range holdings {
		settled, accept := c.settleHolding(h, connect)
		reply.Tasks = append(reply.Tasks, settled)
		if accept != nil {
			accepts = append(accepts, *accept)
		}
	}
	if len(reply.Tasks) == 1 { // for a sidecar from before slots
		reply.Action, reply.Reason = reply.Tasks[0].Action, reply.Tasks[0].Reason
	}
	return accepts
}

// settleHolding decides continue or abort for one reported task; a task
// continued joins connect's.
func (c *Coordinator) settleHolding(h protocol.Holding, connect *domain.ConnectAgent) (protocol.Settled, *domain.AcceptTask) {
	settled := protocol.Settled{TaskID: h.TaskID, Generation: h.Generation, Action: protocol.ActionAbort,
		Reason: "the hub no longer gives this task to you"}
	t, _, ok := c.views.Tasks.Get(h.TaskID)
	resumed := slices.ContainsFunc(connect.Tasks, func(x domain.HeldTask) bool { return x.ID == h.TaskID })
	if !ok || resumed || !t.Status.Active() || t.AssignedTo != connect.ID || t.Generation != h.Generation {
		return settled, nil
	}
	settled.Action, settled.Reason = protocol.ActionContinue, ""
	held := domain.HeldTask{ID: t.ID, Generation: t.Generation, State: domain.StateAssigned}
	if t.Status == domain.StatusWorking {
		held.State = domain.StateWorking
	}
	connect.Tasks = append(connect.Tasks, held)
	if t.Status == domain.StatusAssigned && h.Status == string(domain.StatusWorking) {
		return settled, &domain.AcceptTask{ID: t.ID, AgentID: connect.ID, Generation: t.Generation}
	}
	return settled, nil
}

// heartbeat keeps a session alive. An unknown or replaced session must say
// hello again; a flagged agent has now proved alive.
func (c *Coordinator) heartbeat(ctx context.Context, agentID string, h protocol.Heartbeat) (int, any) {
	a, _, ok := c.views.Agents.Get(agentID)
	if !ok || !a.Online() || a.Session != h.Session {
		return http.StatusConflict, protocol.Error{Error: protocol.CodeUnknownSession, Detail: "say hello again"}
	}
	if a.Unresponsive {
		_, err := c.svc.ExecuteAgent(ctx, domain.UnflagAgent{ID: agentID})
		c.logResult(ctx, err, agentID, "agent proved alive")
	}
	return http.StatusOK, protocol.HeartbeatReply{Status: "ok", Time: c.now().UTC().Format(time.RFC3339Nano),
		Timings: c.timings()}
}

// result maps a command's outcome to an agent reply.
func (c *Coordinator) result(_ any, err error) (int, any) {
	var ve *domain.ValidationError
	switch {
	case err == nil:
		return http.StatusOK, map[string]any{"status": "ok"}
	case errors.As(err, &ve):
		return http.StatusUnprocessableEntity, protocol.Error{Error: protocol.CodeValidationFailed, Detail: err.Error()}
	case errors.Is(err, domain.ErrNotFound):
		return http.StatusNotFound, protocol.Error{Error: protocol.CodeNotFound, Detail: err.Error()}
	case errors.Is(err, domain.ErrStaleGeneration):
		return http.StatusConflict, protocol.Error{Error: protocol.CodeStaleGeneration, Detail: err.Error()}
	case errors.Is(err, domain.ErrWrongAgent):
		return http.StatusConflict, protocol.Error{Error: protocol.CodeWrongAgent, Detail: err.Error()}
	case errors.Is(err, domain.ErrInvalidState):
		return http.StatusConflict, protocol.Error{Error: protocol.CodeInvalidState, Detail: err.Error()}
	case errors.Is(err, domain.ErrStaleSession):
		return http.StatusConflict, protocol.Error{Error: protocol.CodeUnknownSession, Detail: err.Error()}
	}
	return http.StatusServiceUnavailable, protocol.Error{Error: protocol.CodeUnavailable, Detail: err.Error()}
}

// decodeThen decodes a JSON body into T and calls fn, or answers 422.
func decodeThen[T any](data []byte, fn func(T) (int, any)) (int, any) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return http.StatusUnprocessableEntity, protocol.Error{Error: protocol.CodeValidationFailed, Detail: "the body is not the expected JSON: " + protocol.JSONProblem(err)}
	}
	return fn(v)
}
