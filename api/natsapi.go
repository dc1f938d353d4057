package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/lifecycle"
)

// maxInflight bounds the NATS requests handled at once; more wait in the
// subscription's buffer. Handling them concurrently is what lets commands
// that arrive together share one group commit.
const maxInflight = 4096

// NATSServer answers hub commands over NATS.
type NATSServer struct {
	sub      *nats.Subscription
	inflight lifecycle.Gate
}

// ServeNATS subscribes to the hub commands on nc: every operation of the
// table, on agentcom.cmd.<name>. Only admins (and the hub) may publish on
// command subjects, so the requester is "admin". It fails if an operation
// has no handler.
func (a *API) ServeNATS(nc *nats.Conn) (*NATSServer, error) {
	bound, err := bind(a.table, a.handlers())
	if err != nil {
		return nil, err
	}
	a.commands = make(map[string]boundOp, len(bound))
	for _, op := range bound {
		a.commands[op.Name] = op
	}
	s := &NATSServer{}
	sem := make(chan struct{}, maxInflight)
	sub, err := nc.QueueSubscribe(broker.CommandsAll, broker.HubQueue, func(m *nats.Msg) {
		if !s.inflight.Enter() {
			return
		}
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; s.inflight.Leave() }()
			a.handleNATS(m)
		}()
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to commands: %w", err)
	}
	if err := sub.SetPendingLimits(-1, 64<<20); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("set command buffer: %w", err)
	}
	// The server knows the subscription once the flush returns: a command
	// sent the moment Start returns finds the hub listening.
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to commands: %w", err)
	}
	s.sub = sub
	return s, nil
}

// Stop takes no new requests, and returns when those already received
// have been answered. Requests still buffered when ctx ends are dropped
// unanswered (their callers time out).
func (s *NATSServer) Stop(ctx context.Context) {
	closed := s.sub.StatusChanged(nats.SubscriptionClosed) // closed once drained
	if s.sub.Drain() == nil {
		select {
		case <-closed:
		case <-ctx.Done():
		}
	}
	s.inflight.Close()
	_ = s.sub.Unsubscribe()
	s.inflight.Wait()
}

func (a *API) handleNATS(m *nats.Msg) {
	ctx, cancel := broker.RequestContext(m)
	defer cancel()
	// Answer only into an inbox: the hub's connection may publish
	// anywhere, so a reply subject of the caller's choosing must never
	// steer it onto the event stream or any other hub subject.
	if m.Reply != "" && !broker.IsInbox(m.Reply) {
		a.log.Ctx(ctx).Warning().Str("subject", m.Subject).Msg("command with a reply subject outside _INBOX dropped")
		return
	}
	a.reply(ctx, m, a.dispatch(ctx, strings.TrimPrefix(m.Subject, broker.CommandPrefix), m.Data))
}

func (a *API) reply(ctx context.Context, m *nats.Msg, r Reply) {
	if err := broker.Respond(ctx, m, r.Status, r.Body); err != nil {
		a.log.Ctx(ctx).Warning().Err(err).Msg("nats reply not sent")
	}
}

// dispatch calls the operation a command names, with the path
// parameters read from the body's fields of the same names.
func (a *API) dispatch(ctx context.Context, name string, data []byte) Reply {
	op, ok := a.commands[name]
	if !ok {
		return Reply{http.StatusNotFound, ErrorBody{Error: "unknown_command", Detail: "no hub command " + name}}
	}
	params, err := bodyParams(op.Params(), data)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	return op.handle(ctx, call{who: "admin", params: params, body: data})
}

// paramExamples show a path parameter in the refusal of a bad body.
var paramExamples = map[string]string{"id": "task-...", "agent_id": "a1"}

// bodyParams reads the named string fields of a JSON object body (which
// may be empty).
func bodyParams(names []string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	if len(names) == 0 {
		return out, nil
	}
	bad := badBody(fmt.Sprintf(`the body must be a JSON object such as {%q: %q}`, names[0], paramExamples[names[0]]))
	var fields map[string]json.RawMessage
	if err := unmarshalOptional(data, &fields); err != nil {
		return nil, bad
	}
	for _, n := range names {
		var v string
		if raw, ok := fields[n]; ok && json.Unmarshal(raw, &v) != nil {
			return nil, bad
		}
		out[n] = v
	}
	return out, nil
}

func unmarshalOptional(data []byte, v any) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	return json.Unmarshal(data, v)
}
