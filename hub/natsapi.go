package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/lifecycle"
)

// maxInflight bounds the NATS requests handled at once; more wait in the
// subscription's buffer. Handling them concurrently is what lets commands
// that arrive together share one group commit.
const maxInflight = 4096

// idRequest is the body of the commands that name one task.
type idRequest struct {
	ID string `json:"id"`
}

// NATSServer answers hub commands over NATS.
type NATSServer struct {
	sub      *nats.Subscription
	inflight lifecycle.Gate
}

// ServeNATS subscribes to the hub commands on nc. Only admins (and the
// hub) may publish on command subjects, so the requester is "admin".
func (a *API) ServeNATS(nc *nats.Conn) (*NATSServer, error) {
	s := &NATSServer{}
	sem := make(chan struct{}, maxInflight)
	sub, err := nc.QueueSubscribe(broker.CommandsAll, broker.HubQueue, func(m *nats.Msg) {
		if !s.inflight.Enter() {
			return
		}
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; s.inflight.Leave() }()
			a.handleNATS(nc, m)
		}()
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to commands: %w", err)
	}
	if err := sub.SetPendingLimits(-1, 64<<20); err != nil {
		return nil, fmt.Errorf("set command buffer: %w", err)
	}
	s.sub = sub
	return s, nil
}

// Stop takes no new requests, and returns when those already received
// have been answered. Requests still buffered when ctx ends are dropped
// unanswered (their callers time out).
func (s *NATSServer) Stop(ctx context.Context) {
	_ = s.sub.Drain()
	for s.sub.IsValid() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	s.inflight.Close()
	_ = s.sub.Unsubscribe()
	s.inflight.Wait()
}

func (a *API) handleNATS(nc *nats.Conn, m *nats.Msg) {
	ctx, cancel := broker.RequestContext(m)
	defer cancel()
	// Answer only into an inbox: the hub's connection may publish
	// anywhere, so a reply subject of the caller's choosing must never
	// steer it onto the event stream or any other hub subject.
	if m.Reply != "" && !broker.IsInbox(m.Reply) {
		a.log.Ctx(ctx).Warning().Str("subject", m.Subject).Msg("command with a reply subject outside _INBOX dropped")
		return
	}
	name := strings.TrimPrefix(m.Subject, broker.CommandPrefix)
	if name == broker.CmdTelemetryHistory {
		a.reply(ctx, m, a.TelemetryHistory(ctx, nc, m.Data))
		return
	}
	a.reply(ctx, m, a.dispatch(ctx, name, m.Data))
}

func (a *API) reply(ctx context.Context, m *nats.Msg, r Reply) {
	if err := broker.Respond(ctx, m, r.Status, r.Body); err != nil {
		a.log.Ctx(ctx).Warning().Err(err).Msg("nats reply not sent")
	}
}

// dispatch maps a command name to its API call.
func (a *API) dispatch(ctx context.Context, name string, data []byte) Reply {
	const who = "admin"
	switch name {
	case broker.CmdTaskSubmit:
		return a.Submit(ctx, who, data)
	case broker.CmdTaskStats:
		return a.Stats()
	case broker.CmdTaskDeadLetter:
		return a.DeadLetter()
	case broker.CmdTaskList:
		var q ListQuery
		if err := unmarshalOptional(data, &q); err != nil {
			return a.errorReply(ctx, badBody("the body must be a JSON object of status, priority, assigned_to strings"))
		}
		return a.List(ctx, q)
	case broker.CmdStoreCompact:
		return a.Compact(ctx)
	case broker.CmdStoreHealth:
		return a.StoreHealth(ctx)
	case broker.CmdStoreBackup:
		return a.Backup(ctx)
	case broker.CmdAgentList:
		return a.Agents()
	case broker.CmdTokenList:
		return a.ListTokens(ctx)
	case broker.CmdTokenCreate:
		return a.CreateToken(ctx, data)
	case broker.CmdAgentGet, broker.CmdTokenRevoke:
		var req struct {
			AgentID string `json:"agent_id"`
		}
		if err := unmarshalOptional(data, &req); err != nil {
			return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"agent_id": "a1"}`))
		}
		if name == broker.CmdTokenRevoke {
			return a.RevokeToken(ctx, req.AgentID)
		}
		return a.Agent(req.AgentID)
	case broker.CmdTaskGet, broker.CmdTaskRetry, broker.CmdTaskCancel:
		var req idRequest
		if err := unmarshalOptional(data, &req); err != nil {
			return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"id": "task-..."}`))
		}
		return a.byID(ctx, name, req.ID, data)
	}
	return Reply{http.StatusNotFound, ErrorBody{Error: "unknown_command", Detail: "no hub command " + name}}
}

func (a *API) byID(ctx context.Context, name, id string, data []byte) Reply {
	switch name {
	case broker.CmdTaskRetry:
		return a.Retry(ctx, "admin", id)
	case broker.CmdTaskCancel:
		return a.Cancel(ctx, "admin", id, data)
	}
	return a.Get(ctx, id)
}

func unmarshalOptional(data []byte, v any) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	return json.Unmarshal(data, v)
}
