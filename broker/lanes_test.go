package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
)

// echoLanes answers every agent request with the name of the lane's
// connection it came in on.
func echoLanes(b *brokertest.Bundle) *broker.Lanes {
	lanes := b.Server.AgentLanes("q", func(m *nats.Msg) { _ = m.Respond([]byte(m.Sub.Subject)) })
	b.Server.SetAgentAdmission(func(id string) error { return lanes.Open(id, time.Now()) })
	return lanes
}

// TestLanePerAgent: each agent's requests come in on a lane of its own,
// open before its connection is let in, so its very first request is
// answered; a lane closes only once its agent is gone and idle.
func TestLanePerAgent(t *testing.T) {
	b := brokertest.Start(t, 0)
	lanes := echoLanes(b)
	defer lanes.Close()
	for _, id := range []string{"a1", "a2"} {
		require.Equal(t, broker.AgentRequests(id), askLane(t, b.Dial(t, agentToken(b, id)), id),
			"the first request finds the lane of %s, and only it", id)
	}
	require.Equal(t, 2, lanes.Len())
	require.ElementsMatch(t, []string{"a1", "a2"}, b.Server.ConnectedAgents())

	lanes.Gone("a1") // told while a1 is still connected: the lane stays
	require.Zero(t, lanes.Sweep(time.Now().Add(time.Hour), time.Minute))
	require.Equal(t, 2, lanes.Len())
}

// TestLaneSweptWhenGone: the lane of an agent whose connections closed
// goes after the idle wait, not before; the agent's next connection opens
// a new one.
func TestLaneSweptWhenGone(t *testing.T) {
	b := brokertest.Start(t, 0)
	lanes := echoLanes(b)
	defer lanes.Close()
	token := agentToken(b, "a1")
	b.Dial(t, token).Close()
	require.Eventually(t, func() bool { return len(b.Server.ConnectedAgents()) == 0 }, 10*time.Second, 10*time.Millisecond)
	lanes.Gone("a1")
	require.Zero(t, lanes.Sweep(time.Now(), time.Minute), "not idle long enough")
	require.Equal(t, 1, lanes.Sweep(time.Now().Add(time.Minute), time.Minute))
	require.Zero(t, lanes.Len())
	require.Equal(t, broker.AgentRequests("a1"), askLane(t, b.Dial(t, token), "a1"))
	require.Equal(t, 1, lanes.Len())
}

// askLane sends one request as agent id and returns the answer.
func askLane(t *testing.T, nc *nats.Conn, id string) string {
	t.Helper()
	inbox := broker.AgentInbox(id) + ".x"
	sub, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	require.NoError(t, nc.PublishRequest(broker.AgentRequest(id, "hello"), inbox, nil))
	msg, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	return string(msg.Data)
}

// TestLaneRefusal: when the lane cannot open the agent is not let in,
// and closed lanes open no more.
func TestLaneRefusal(t *testing.T) {
	b := brokertest.Start(t, 0)
	b.Server.SetAgentAdmission(func(string) error { return errors.New("no lane") })
	_, err := nats.Connect(b.Server.ClientURL(), nats.Token(agentToken(b, "a1")))
	require.ErrorContains(t, err, "Authorization Violation")

	lanes := echoLanes(b)
	lanes.Unsubscribe()
	require.ErrorIs(t, lanes.Open("a1", time.Now()), broker.ErrLanesClosed)
	lanes.Close()
	lanes.Close()
}
