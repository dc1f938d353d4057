package agents

import (
	"context"
	"errors"
	"net/http"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/messaging"
	"github.com/agentcom/agentcom/protocol"
)

// message answers the send, inbox and ack verbs for the agent of the
// subject: it sends as itself and reads and moves only its own mailbox.
func (c *Coordinator) message(ctx context.Context, agentID, verb string, data []byte) (int, any) {
	switch verb {
	case broker.VerbSend:
		return decodeThen(data, func(req protocol.Send) (int, any) {
			m, err := c.messages.Send(ctx, agentID, true, req)
			if err != nil {
				return c.messageResult(nil, err)
			}
			return http.StatusOK, m
		})
	case broker.VerbJoin, broker.VerbLeave:
		return decodeThen(data, func(ref protocol.ChannelRef) (int, any) {
			change := c.messages.Join
			if verb == broker.VerbLeave {
				change = c.messages.Leave
			}
			ch, err := change(ctx, agentID, ref.Channel)
			return c.messageResult(ch, err)
		})
	case broker.VerbHistory:
		return decodeThen(data, func(ref protocol.ChannelRef) (int, any) {
			msgs, err := c.messages.History(ctx, agentID, ref)
			return c.messageResult(map[string]any{"channel": messaging.Normalize(ref.Channel), "messages": msgs}, err)
		})
	case broker.VerbInbox:
		in, err := c.messages.Inbox(ctx, agentID)
		if err != nil {
			return c.result(nil, err)
		}
		return http.StatusOK, in
	}
	return decodeThen(data, func(a protocol.Ack) (int, any) {
		cursor, err := c.messages.Ack(ctx, agentID, a.Seq)
		if err != nil {
			return c.result(nil, err)
		}
		return http.StatusOK, protocol.Ack{Seq: cursor}
	})
}

// messageResult answers a message verb: a channel there is not is 404,
// one the agent has not joined 403.
func (c *Coordinator) messageResult(v any, err error) (int, any) {
	switch {
	case errors.Is(err, messaging.ErrNoChannel):
		return http.StatusNotFound, protocol.Error{Error: protocol.CodeNotFound, Detail: err.Error()}
	case errors.Is(err, messaging.ErrNotSubscribed):
		return http.StatusForbidden, protocol.Error{Error: "not_subscribed", Detail: err.Error()}
	case err != nil:
		return c.result(nil, err)
	}
	return http.StatusOK, v
}
