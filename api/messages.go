package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/agentcom/agentcom/messaging"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
)

// Messages is what the message operations call (messaging.Service).
type Messages interface {
	Send(ctx context.Context, from string, req protocol.Send) (protocol.Message, error)
	Search(ctx context.Context, q messaging.Query) ([]protocol.Message, uint64, error)
	Thread(ctx context.Context, id string) ([]protocol.Message, error)
}

// messageHandlers answer the operators' message operations.
func (a *API) messageHandlers() map[string]handler {
	return map[string]handler{
		ops.OpMessageSend.Name: func(ctx context.Context, c call) Reply {
			var req protocol.Send
			if err := json.Unmarshal(c.body, &req); err != nil {
				return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"to": "a1", "body": "hello"}`))
			}
			m, err := a.messages.Send(ctx, c.who, req)
			if err != nil {
				return a.errorReply(ctx, err)
			}
			return Reply{http.StatusCreated, m}
		},
		ops.OpMessageList.Name: a.searchMessages,
		ops.OpThreadGet.Name: func(ctx context.Context, c call) Reply {
			msgs, err := a.messages.Thread(ctx, c.params["id"])
			if errors.Is(err, messaging.ErrNoThread) {
				return Reply{http.StatusNotFound, ErrorBody{Error: "message_not_found", Detail: c.params["id"]}}
			} else if err != nil {
				return a.errorReply(ctx, err)
			}
			return Reply{http.StatusOK, ops.Thread{ThreadID: msgs[0].ThreadID, Messages: msgs}}
		},
	}
}

// searchMessages answers one page of a message search.
func (a *API) searchMessages(ctx context.Context, c call) Reply {
	var q ops.MessageQuery
	if err := unmarshalOptional(c.body, &q); err != nil {
		return a.errorReply(ctx, badBody("the body must be a JSON object of from, to, thread, q, since, until, after, limit"))
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > 200 {
		return a.errorReply(ctx, fieldErr("limit", "out_of_range", "limit must be between 1 and 200"))
	}
	msgs, next, err := a.messages.Search(ctx, messaging.Query{From: q.From, To: q.To, Thread: q.Thread, Text: q.Q,
		Since: q.Since, Until: q.Until, After: q.After, Limit: q.Limit})
	if err != nil {
		return a.errorReply(ctx, err)
	}
	return Reply{http.StatusOK, ops.Messages{Messages: msgs, Count: len(msgs), Next: next}}
}
