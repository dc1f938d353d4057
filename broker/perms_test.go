package broker_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
)

// violations collects the permission errors the server sends a client.
type violations struct {
	mu   sync.Mutex
	seen []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen = append(v.seen, err.Error())
}

func (v *violations) has(subject string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.seen {
		if strings.Contains(s, "Permissions Violation for Publish to \""+subject+"\"") {
			return true
		}
	}
	return false
}

// storeWithAdmin starts a server with the event store, the token bucket
// and one task's events written by the hub, and connects an admin.
func storeWithAdmin(t *testing.T) (*brokertest.Bundle, *broker.EventStore, *nats.Conn, *violations) {
	t.Helper()
	b := brokertest.Start(t, 0)
	ctx := context.Background()
	store, err := broker.OpenEventStore(ctx, b.Conn)
	require.NoError(t, err)
	_, err = broker.OpenTokens(ctx, b.Conn, b.Auth)
	require.NoError(t, err)
	_, err = store.AppendAtomic(ctx, []broker.Append{{Subject: broker.TaskEvents("task-1"), Events: events("task-1", 3)}})
	require.NoError(t, err)
	admin := broker.NewToken()
	b.Auth.Set(broker.HashToken(admin), broker.Identity{Name: "admin", Role: broker.RoleAdmin})
	v := &violations{}
	nc, err := nats.Connect(b.Server.ClientURL(), nats.Token(admin), nats.ErrorHandler(v.handler))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return b, store, nc, v
}

// TestAdminCannotWriteOrRemoveEvents: with the admin token, every way to
// write, remove or rewrite the hub's stored history is refused by the
// server, and the events are all still there.
func TestAdminCannotWriteOrRemoveEvents(t *testing.T) {
	t.Parallel()
	_, store, nc, v := storeWithAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }

	for what, call := range map[string]func(context.Context) error{
		"purge the stream": func(c context.Context) error {
			_, err := nc.RequestWithContext(c, "$JS.API.STREAM.PURGE."+broker.EventsStream, nil)
			return err
		},
		"delete the stream":        func(c context.Context) error { return js.DeleteStream(c, broker.EventsStream) },
		"delete the token bucket":  func(c context.Context) error { return js.DeleteKeyValue(c, broker.TokensBucket) },
		"delete the LOGS stream":   func(c context.Context) error { return js.DeleteStream(c, broker.LogsStream) },
		"delete the TELEMETRY one": func(c context.Context) error { return js.DeleteStream(c, broker.TelemetryStream) },
		"update the stream": func(c context.Context) error {
			_, err := js.UpdateStream(c, jetstream.StreamConfig{Name: broker.EventsStream, Subjects: []string{broker.EventsAll}, MaxMsgs: 1})
			return err
		},
	} {
		c, done := short()
		require.Error(t, call(c), what)
		done()
	}
	// Raw publishes: the server refuses them (an async error), so wait
	// for each refusal; then nothing of them can arrive later.
	refusedPubs := map[string]*nats.Msg{
		"an event past the single writer": {Subject: broker.TaskEvents("task-1"), Data: []byte(`{}`)},
		"a rollup of one task": {Subject: broker.TaskEvents("task-1"), Data: []byte(`{}`),
			Header: nats.Header{jetstream.MsgRollup: []string{jetstream.MsgRollupSubject}}},
		"a subject purge":       {Subject: "$JS.API.STREAM.PURGE." + broker.EventsStream, Data: []byte(`{"filter":"agentcom.evt.task.task-1"}`)},
		"a message delete":      {Subject: "$JS.API.STREAM.MSG.DELETE." + broker.EventsStream, Data: []byte(`{"seq":1}`)},
		"a token key write":     {Subject: "$KV." + broker.TokensBucket + ".x", Data: []byte(`{}`)},
		"an API answer steered": {Subject: "$JS.API.INFO", Reply: broker.TaskEvents("task-1")},
	}
	for what, m := range refusedPubs {
		require.NoError(t, nc.PublishMsg(m), what)
	}
	require.NoError(t, nc.Flush())
	for what, m := range refusedPubs {
		require.Eventually(t, func() bool { return v.has(m.Subject) }, 10*time.Second, 10*time.Millisecond, "%s was not refused", what)
	}

	info, err := store.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, info.State.Msgs, "the hub's three events, nothing more or less")
	require.EqualValues(t, 1, info.State.FirstSeq)
	require.EqualValues(t, 3, info.State.LastSeq)
}

// TestHubSecretOnlyInProcess: the hub's secret is refused over the
// network, so its full permissions are only ever the in-process hub's.
func TestHubSecretOnlyInProcess(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	_, err := nats.Connect(b.Server.ClientURL(), nats.Token(b.Auth.HubSecret()), nats.NoReconnect())
	require.Error(t, err)
	require.Contains(t, strings.ToLower(err.Error()), "authorization")
	nc, err := b.Server.ConnectInProcess(b.Auth.HubSecret(), "hub again")
	require.NoError(t, err)
	defer nc.Close()
	require.True(t, nc.IsConnected())
}
