package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// sendAs has agent a send req and returns the stored message.
func sendAs(t *testing.T, a *testAgent, req protocol.Send) protocol.Message {
	t.Helper()
	st, body := a.request(broker.VerbSend, req)
	require.Equal(t, http.StatusOK, st, string(body))
	var m protocol.Message
	require.NoError(t, json.Unmarshal(body, &m))
	return m
}

// inbox reads agent a's mailbox.
func inbox(t *testing.T, a *testAgent) protocol.Inbox {
	t.Helper()
	st, body := a.request(broker.VerbInbox, struct{}{})
	require.Equal(t, http.StatusOK, st, string(body))
	var in protocol.Inbox
	require.NoError(t, json.Unmarshal(body, &in))
	return in
}

// pushes collects the messages pushed to an agent.
func pushes(t *testing.T, a *testAgent) chan protocol.Message {
	t.Helper()
	ch := make(chan protocol.Message, 16)
	_, err := a.nc.Subscribe(broker.Push(a.id, broker.PushMessage), func(m *nats.Msg) {
		var msg protocol.Message
		if json.Unmarshal(m.Data, &msg) == nil {
			ch <- msg
		}
	})
	require.NoError(t, err)
	require.NoError(t, a.nc.Flush())
	return ch
}

func text(s string) json.RawMessage { b, _ := json.Marshal(s); return b }

func msgIDs(msgs []protocol.Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

// A direct message to an agent that is away waits in its mailbox and is
// delivered once after it comes back; a broadcast reaches every connected
// agent at once; replies make a thread; search finds by text a page at a
// time; an agent reads only its own mailbox and sends only as itself.
func TestMessagesReachAgentsOnceAndThreadsHold(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	a1, a2, a3 := newTestAgent(t, h, "a1", nil, ignore), newTestAgent(t, h, "a2", nil, ignore), newTestAgent(t, h, "a3", nil, ignore)
	got2, got3, got1 := pushes(t, a2), pushes(t, a3), pushes(t, a1)

	direct := sendAs(t, a1, protocol.Send{To: "away", Subject: "review", Body: text("please review PR 7"), AckRequired: true})
	require.Equal(t, "a1", direct.From, "the sender is the subject's agent")
	all := sendAs(t, a1, protocol.Send{Subject: "standup", Body: text("All hands at noon")})
	for _, ch := range []chan protocol.Message{got2, got3} {
		select {
		case m := <-ch:
			require.Equal(t, all.ID, m.ID)
		case <-time.After(10 * time.Second):
			t.Fatal("a broadcast did not reach a connected agent")
		}
	}
	require.Empty(t, got1, "the sender does not get its own broadcast")

	away := dialTestAgent(t, h, "away", ignore)
	require.Equal(t, http.StatusOK, away.hello(nil))
	in := inbox(t, away)
	require.Equal(t, []string{direct.ID, all.ID}, msgIDs(in.Messages))
	st, _ := away.request(broker.VerbAck, protocol.Ack{Seq: in.Messages[1].Seq})
	require.Equal(t, http.StatusOK, st)
	again := &testAgent{id: "away", session: "s-away2", nc: reconnectAs(t, h, away), work: ignore}
	require.Equal(t, http.StatusOK, again.hello(nil))
	require.Empty(t, inbox(t, again).Messages, "delivered once: acknowledged, never again")

	r1 := sendAs(t, a2, protocol.Send{To: "a1", ReplyTo: all.ID, Body: text("noon works")})
	r2 := sendAs(t, a3, protocol.Send{To: "a2", ReplyTo: r1.ID, Type: "json", Body: json.RawMessage(`{"vote":"yes"}`)})
	require.Equal(t, all.ID, r2.ThreadID)
	code, out := h.do(t, http.MethodGet, "/api/threads/"+r2.ID, "", "")
	require.Equal(t, http.StatusOK, code)
	var thread struct{ Messages []protocol.Message }
	raw, _ := json.Marshal(out)
	require.NoError(t, json.Unmarshal(raw, &thread))
	require.Equal(t, []string{all.ID, r1.ID, r2.ID}, msgIDs(thread.Messages), "the whole tree, in order")
	require.Equal(t, r1.ID, thread.Messages[2].ReplyTo)

	search := func(query string) ([]string, float64) {
		code, out := h.do(t, http.MethodGet, "/api/messages?"+query, "", "")
		require.Equal(t, http.StatusOK, code, out)
		var page struct {
			Messages []protocol.Message
			Next     float64
		}
		raw, _ := json.Marshal(out)
		require.NoError(t, json.Unmarshal(raw, &page))
		return msgIDs(page.Messages), page.Next
	}
	found, _ := search("q=HANDS")
	require.Equal(t, []string{all.ID}, found, "text search, any case")
	found, _ = search("from=a2")
	require.Equal(t, []string{r1.ID}, found)
	first, next := search("limit=2")
	require.Equal(t, []string{direct.ID, all.ID}, first)
	rest, _ := search(fmt.Sprintf("limit=2&after=%d", int(next)))
	require.Equal(t, []string{r1.ID, r2.ID}, rest)

	for _, verb := range []string{broker.VerbInbox, broker.VerbSend} {
		_, err := a2.nc.Request(broker.AgentRequest("a1", verb), []byte(`{"body":"\"x\""}`), 500*time.Millisecond)
		require.Error(t, err, "%s as another agent is refused by the server", verb)
	}
	require.Equal(t, []string{all.ID, r2.ID}, msgIDs(inbox(t, a2).Messages), "a2's own: the broadcast and what a3 sent it")

	code, out = h.do(t, http.MethodPost, "/api/messages", h.token, `{"to":"a2","body":"from the operators"}`)
	require.Equal(t, http.StatusCreated, code, out)
	require.Equal(t, "admin", out["from"])
	for req, field := range map[string]string{
		`{"to":"a2","body":{"not":"text"}}`:       "body",
		`{"to":"a b","body":"x"}`:                 "to",
		`{"body":"x","reply_to":"msg-nowhere"}`:   "reply_to",
		`{"body":"x","importance":"apocalyptic"}`: "importance",
	} {
		var s protocol.Send
		require.NoError(t, json.Unmarshal([]byte(req), &s))
		st, body := a1.request(broker.VerbSend, s)
		require.Equal(t, http.StatusUnprocessableEntity, st, req)
		require.Contains(t, string(body), field, req)
	}
}

// A channel reaches its subscribers only, keeps its history for them, and
// refuses agents that have not joined it; names are normalised.
func TestChannelsDeliverToTheirSubscribers(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	a1, a2, a3 := newTestAgent(t, h, "a1", nil, ignore), newTestAgent(t, h, "a2", nil, ignore), newTestAgent(t, h, "a3", nil, ignore)
	got1, got2, got3 := pushes(t, a1), pushes(t, a2), pushes(t, a3)
	for _, a := range []*testAgent{a1, a2} {
		st, body := a.request(broker.VerbJoin, protocol.ChannelRef{Channel: "#Builds"})
		require.Equal(t, http.StatusOK, st, string(body))
	}
	st, body := a3.request(broker.VerbSend, protocol.Send{Channel: "builds", Body: text("let me in")})
	require.Equal(t, http.StatusForbidden, st, string(body))
	green := sendAs(t, a1, protocol.Send{Channel: "BUILDS", Body: text("main is green")})
	require.Equal(t, "builds", green.Channel)
	select {
	case m := <-got2:
		require.Equal(t, green.ID, m.ID)
	case <-time.After(10 * time.Second):
		t.Fatal("a subscriber did not get the channel's message")
	}
	require.Empty(t, got1, "not to its sender")
	require.Empty(t, got3, "not to an agent outside the channel")

	st, body = a2.request(broker.VerbHistory, protocol.ChannelRef{Channel: "builds"})
	require.Equal(t, http.StatusOK, st, string(body))
	require.Contains(t, string(body), green.ID)
	st, _ = a3.request(broker.VerbHistory, protocol.ChannelRef{Channel: "builds"})
	require.Equal(t, http.StatusForbidden, st, "history is for subscribers")
	require.Contains(t, msgIDs(inbox(t, a2).Messages), green.ID, "a subscriber's mailbox holds the channel")

	code, out := h.do(t, http.MethodGet, "/api/channels/builds", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{"a1", "a2"}, out["subscribers"])
	code, out = h.do(t, http.MethodGet, "/api/agents/a2/subscriptions", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{"builds"}, out["channels"])
	code, out = h.do(t, http.MethodGet, "/api/channels/builds/history?limit=10", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1.0, out["count"])

	st, _ = a2.request(broker.VerbLeave, protocol.ChannelRef{Channel: "builds"})
	require.Equal(t, http.StatusOK, st)
	sendAs(t, a1, protocol.Send{Channel: "builds", Body: text("still green")})
	code, out = h.do(t, http.MethodGet, "/api/channels/builds", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{"a1"}, out["subscribers"])

	code, _ = h.do(t, http.MethodPost, "/api/channels", h.token, `{"name":"ops","description":"operators"}`)
	require.Equal(t, http.StatusCreated, code)
	code, out = h.do(t, http.MethodPost, "/api/channels", h.token, `{"name":"#OPS"}`)
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, "channel_exists", out["error"])
	code, out = h.do(t, http.MethodPost, "/api/messages", h.token, `{"channel":"nowhere","body":"x"}`)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "channel_not_found", out["error"])
}
