package main

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// dialAgent connects as an agent and says hello, and then does nothing:
// it stands for an agent that never accepts its work.
func dialAgent(t *testing.T, url, id, token string, caps ...string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Token(token), nats.CustomInboxPrefix(broker.AgentInbox(id)))
	require.NoError(t, err)
	_, err = nc.SubscribeSync("agentcom.push." + id + ".>")
	require.NoError(t, err)
	b, _ := json.Marshal(protocol.Hello{Name: id, Session: "deaf-session", Capabilities: caps})
	resp, err := nc.Request(broker.AgentRequest(id, broker.VerbHello), b, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, "200", resp.Header.Get(protocol.HeaderStatus))
	return nc
}

// agentRequest sends one agent request and returns its status and body.
func agentRequest(t *testing.T, nc *nats.Conn, id, verb, body string) (int, string) {
	t.Helper()
	resp, err := nc.Request(broker.AgentRequest(id, verb), []byte(body), 10*time.Second)
	require.NoError(t, err)
	status, err := strconv.Atoi(resp.Header.Get(protocol.HeaderStatus))
	require.NoError(t, err)
	return status, string(resp.Data)
}
