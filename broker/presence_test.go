package broker_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
)

func agentToken(b *brokertest.Bundle, id string) string {
	tok := broker.NewToken()
	b.Auth.Set(broker.HashToken(tok), broker.Identity{Name: id, Role: broker.RoleAgent})
	return tok
}

func TestAgentDisconnectIsNoticedAtOnce(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	gone := make(chan string, 4)
	sys, err := b.Server.WatchAgentDisconnects(func(id, _ string) { gone <- id }, nil)
	require.NoError(t, err)
	defer sys.Close()
	tok := agentToken(b, "a1")

	first := b.Dial(t, tok)
	second := b.Dial(t, tok)
	require.Equal(t, 2, b.Server.AgentConnections("a1"))
	first.Close()
	select {
	case id := <-gone:
		t.Fatalf("%s reported gone while its newer connection lives", id)
	case <-time.After(300 * time.Millisecond):
	}
	second.Close()
	select {
	case id := <-gone:
		require.Equal(t, "a1", id)
	case <-time.After(5 * time.Second):
		t.Fatal("disconnect not reported")
	}
}

func TestDisconnectAgentKeepsNewest(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	tok := agentToken(b, "a2")
	old := b.Dial(t, tok)
	newer := b.Dial(t, tok)
	require.Equal(t, 1, b.Server.DisconnectAgent("a2", true))
	require.Eventually(t, func() bool { return !old.IsConnected() || old.IsReconnecting() }, 5*time.Second, 10*time.Millisecond)
	require.True(t, newer.IsConnected())
}

func TestAgentPermissionsAreItsOwnSubjectsOnly(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	errs := make(chan error, 16)
	nc, err := nats.Connect(b.Server.ClientURL(), nats.Token(agentToken(b, "a3")),
		nats.CustomInboxPrefix(broker.AgentInbox("a3")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	require.NoError(t, err)
	defer nc.Close()

	denied := func(what string, f func() error) {
		t.Helper()
		require.NoError(t, f(), what)
		require.NoError(t, nc.Flush())
		select {
		case err := <-errs:
			require.ErrorContains(t, err, "Permissions Violation", what)
		case <-time.After(2 * time.Second):
			t.Fatalf("%s was allowed", what)
		}
	}
	denied("publish as another agent", func() error { return nc.Publish(broker.AgentRequest("other", broker.VerbComplete), nil) })
	denied("publish an event", func() error { return nc.Publish(broker.TaskEvents("task-1"), nil) })
	denied("call the JetStream API", func() error { return nc.Publish("$JS.API.STREAM.NAMES", nil) })
	denied("publish telemetry", func() error { return nc.Publish("agent_com.task.submit", nil) })
	denied("publish a hub command", func() error { return nc.Publish(broker.Command(broker.CmdTaskSubmit), nil) })
	denied("subscribe to another agent's pushes", func() error {
		_, err := nc.SubscribeSync("agentcom.push.other.>")
		return err
	})
	denied("subscribe to events", func() error {
		_, err := nc.SubscribeSync(broker.EventsAll)
		return err
	})

	// What it may do: subscribe to its own pushes, publish its own requests.
	_, err = nc.SubscribeSync("agentcom.push.a3.>")
	require.NoError(t, err)
	require.NoError(t, nc.Publish(broker.AgentRequest("a3", broker.VerbHeartbeat), nil))
	require.NoError(t, nc.Flush())
	select {
	case err := <-errs:
		t.Fatalf("own subjects refused: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
}
