package agents

import (
	"context"
	"net/http"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// message answers the send, inbox and ack verbs for the agent of the
// subject: it sends as itself and reads and moves only its own mailbox.
func (c *Coordinator) message(ctx context.Context, agentID, verb string, data []byte) (int, any) {
	switch verb {
	case broker.VerbSend:
		return decodeThen(data, func(req protocol.Send) (int, any) {
			m, err := c.messages.Send(ctx, agentID, req)
			if err != nil {
				return c.result(nil, err)
			}
			return http.StatusOK, m
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
