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
	Send(ctx context.Context, from string, agent bool, req protocol.Send) (protocol.Message, error)
	Search(ctx context.Context, q messaging.Query) ([]protocol.Message, uint64, error)
	Thread(ctx context.Context, id string) ([]protocol.Message, error)
	Channels(ctx context.Context) ([]protocol.Channel, error)
	Channel(ctx context.Context, name string) (protocol.Channel, error)
	Create(ctx context.Context, by, name, description string) (protocol.Channel, error)
	History(ctx context.Context, agent string, ref protocol.ChannelRef) ([]protocol.Message, error)
	Subscriptions(ctx context.Context, agent string) ([]string, error)
}

// messageHandlers answer the operators' message operations.
func (a *API) messageHandlers() map[string]handler {
	return map[string]handler{
		ops.OpMessageSend.Name: func(ctx context.Context, c call) Reply {
			var req protocol.Send
			if err := json.Unmarshal(c.body, &req); err != nil {
				return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"to": "a1", "body": "hello"}`))
			}
			m, err := a.messages.Send(ctx, c.who, false, req)
			if err != nil {
				return a.channelError(ctx, err)
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

// channelHandlers answer the channel operations.
func (a *API) channelHandlers() map[string]handler {
	return map[string]handler{
		ops.OpChannelList.Name: func(ctx context.Context, _ call) Reply {
			list, err := a.messages.Channels(ctx)
			if err != nil {
				return a.errorReply(ctx, err)
			}
			return Reply{http.StatusOK, ops.Channels{Channels: list, Count: len(list)}}
		},
		ops.OpChannelCreate.Name: func(ctx context.Context, c call) Reply {
			var req ops.ChannelRequest
			if err := json.Unmarshal(c.body, &req); err != nil {
				return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"name": "builds"}`))
			}
			ch, err := a.messages.Create(ctx, c.who, req.Name, req.Description)
			if err != nil {
				return a.channelError(ctx, err)
			}
			return Reply{http.StatusCreated, ch}
		},
		ops.OpChannelGet.Name: func(ctx context.Context, c call) Reply {
			ch, err := a.messages.Channel(ctx, c.params["channel"])
			if err != nil {
				return a.channelError(ctx, err)
			}
			return Reply{http.StatusOK, ch}
		},
		ops.OpChannelHistory.Name: a.channelHistory,
		ops.OpSubscriptions.Name: func(ctx context.Context, c call) Reply {
			id := c.params["agent_id"]
			if agent, ok := c.agent(); ok && agent != id {
				return notYours("agent " + id)
			}
			subs, err := a.messages.Subscriptions(ctx, id)
			if err != nil {
				return a.errorReply(ctx, err)
			}
			return Reply{http.StatusOK, ops.Subscriptions{AgentID: id, Channels: subs}}
		},
	}
}

func (a *API) channelHistory(ctx context.Context, c call) Reply {
	var q ops.HistoryQuery
	if err := unmarshalOptional(c.body, &q); err != nil {
		return a.errorReply(ctx, badBody(`the body must be a JSON object such as {"limit": 50}`))
	}
	if q.Limit < 0 || q.Limit > 200 {
		return a.errorReply(ctx, fieldErr("limit", "out_of_range", "limit must be between 1 and 200 (0: 50)"))
	}
	msgs, err := a.messages.History(ctx, "", protocol.ChannelRef{Channel: c.params["channel"], Limit: q.Limit})
	if err != nil {
		return a.channelError(ctx, err)
	}
	return Reply{http.StatusOK, ops.ChannelHistory{Channel: messaging.Normalize(c.params["channel"]), Messages: msgs,
		Count: len(msgs)}}
}

// channelError maps a channel's refusals: none is 404, one that exists 409.
func (a *API) channelError(ctx context.Context, err error) Reply {
	switch {
	case errors.Is(err, messaging.ErrNoChannel):
		return Reply{http.StatusNotFound, ErrorBody{Error: "channel_not_found", Detail: err.Error()}}
	case errors.Is(err, messaging.ErrChannelExists):
		return Reply{http.StatusConflict, ErrorBody{Error: "channel_exists", Detail: err.Error()}}
	}
	return a.errorReply(ctx, err)
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
