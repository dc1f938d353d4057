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
	"github.com/agentcom/agentcom/protocol"
)

// maxInflight bounds the NATS requests handled at once; more wait in the
// subscription's buffer. Handling them concurrently is what lets commands
// that arrive together share one group commit.
const maxInflight = 4096

// NATSServer answers hub commands over NATS.
type NATSServer struct {
	subs     []*nats.Subscription
	inflight lifecycle.Gate
}

// ServeNATS subscribes to the hub commands on nc: every operation of the
// table, on agentcom.cmd.<name> (only admins, and the hub, may publish
// there, so the caller is "admin") and on agentcom.tok.<token id>.cmd.<name>
// (only a connection made with that token may publish there, so the
// caller is the token's, and the op's access is checked as over HTTP). It
// fails if an operation has no handler.
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
	handle := func(m *nats.Msg) {
		if !s.inflight.Enter() {
			return
		}
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; s.inflight.Leave() }()
			a.handleNATS(m)
		}()
	}
	for _, subject := range []string{broker.CommandsAll, broker.TokenCommandsAll} {
		sub, err := nc.QueueSubscribe(subject, broker.HubQueue, handle)
		if err == nil {
			err = sub.SetPendingLimits(-1, 64<<20)
		}
		if err != nil {
			s.unsubscribe()
			return nil, fmt.Errorf("subscribe to commands: %w", err)
		}
		s.subs = append(s.subs, sub)
	}
	// The server knows the subscriptions once the flush returns: a
	// command sent the moment Start returns finds the hub listening.
	if err := nc.Flush(); err != nil {
		s.unsubscribe()
		return nil, fmt.Errorf("subscribe to commands: %w", err)
	}
	return s, nil
}

func (s *NATSServer) unsubscribe() {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
}

// Stop takes no new requests, and returns when those already received
// have been answered. Requests still buffered when ctx ends are dropped
// unanswered (their callers time out).
func (s *NATSServer) Stop(ctx context.Context) {
	for _, sub := range s.subs {
		closed := sub.StatusChanged(nats.SubscriptionClosed) // closed once drained
		if sub.Drain() == nil {
			select {
			case <-closed:
			case <-ctx.Done():
			}
		}
	}
	s.inflight.Close()
	s.unsubscribe()
	s.inflight.Wait()
}

func (a *API) handleNATS(m *nats.Msg) {
	ctx, cancel := broker.RequestContext(m)
	if m.Header != nil {
		ctx = withIdempotencyKey(ctx, m.Header.Get(HeaderIdempotencyKey))
	}
	defer cancel()
	// Answer only into an inbox: the hub's connection may publish
	// anywhere, so a reply subject of the caller's choosing must never
	// steer it onto the event stream or any other hub subject.
	if m.Reply != "" && !broker.IsInbox(m.Reply) {
		a.log.Ctx(ctx).Warning().Str("subject", m.Subject).Msg("command with a reply subject outside _INBOX dropped")
		return
	}
	name, c, refusal, ok := a.natsCaller(m.Subject)
	if ok {
		tool := ""
		if m.Header != nil {
			tool = m.Header.Get(protocol.HeaderMCPTool)
		}
		refusal = a.asTool(ctx, tool, c, func() Reply { return a.dispatch(ctx, name, c, m.Data) })
	}
	a.refused.record(refusal.Status, "NATS "+name)
	a.reply(ctx, m, refusal)
}

// natsCaller reads the command name and the caller from a command's
// subject: an admin on agentcom.cmd.<name>, the token's identity on
// agentcom.tok.<token id>.cmd.<name> (refused when the token was revoked
// since the connection was made).
func (a *API) natsCaller(subject string) (string, call, Reply, bool) {
	if name, ok := strings.CutPrefix(subject, broker.CommandPrefix); ok {
		return name, call{who: "admin", role: broker.RoleAdmin}, Reply{}, true
	}
	tokenID, name, _ := broker.ParseTokenCommand(subject)
	id, ok := a.auth.ByTokenID(tokenID)
	if !ok {
		return name, call{}, Reply{http.StatusUnauthorized, ErrorBody{Error: "unauthorized",
			Detail: "the token was not recognised (revoked?)"}}, false
	}
	return name, call{who: id.Name, role: id.Role}, Reply{}, true
}

func (a *API) reply(ctx context.Context, m *nats.Msg, r Reply) {
	if err := broker.Respond(ctx, m, r.Status, r.Body, "Retry-After", retryAfter(r)); err != nil {
		a.log.Ctx(ctx).Warning().Err(err).Msg("nats reply not sent")
	}
}

// dispatch calls the operation a command names, if c may, with the path
// parameters read from the body's fields of the same names.
func (a *API) dispatch(ctx context.Context, name string, c call, data []byte) Reply {
	op, ok := a.commands[name]
	if !ok {
		return Reply{http.StatusNotFound, ErrorBody{Error: "unknown_command", Detail: "no hub command " + name}}
	}
	if r, ok := a.permit(op.Op, c); !ok {
		return r
	}
	if r, ok := a.throttle(op.Op, c); !ok {
		return r
	}
	params, err := bodyParams(op.Params(), data)
	if err != nil {
		return a.errorReply(ctx, err)
	}
	c.params, c.body = params, data
	return op.handle(ctx, c)
}

// paramExamples show a path parameter in the refusal of a bad body.
var paramExamples = map[string]string{"id": "task-...", "agent_id": "a1", "name": "dash"}

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
