package hub

import (
	"context"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/client"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/protocol/ops"
	"github.com/agentcom/agentcom/storeops"
)

func dialHub(t *testing.T, h *testHub, token string) *client.Client {
	t.Helper()
	c, err := client.Dial(config.Client{Hub: h.NATSURL(), Token: token})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func TestNATSCommands(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	c := dialHub(t, h, h.token)
	ctx := context.Background()

	var sub map[string]any
	require.NoError(t, c.Do(ctx, ops.OpTaskSubmit, map[string]any{"description": "over nats", "priority": "urgent"}, &sub))
	id := sub["task_id"].(string)
	require.Equal(t, "urgent", sub["priority"])

	var got map[string]any
	require.NoError(t, c.Do(ctx, ops.OpTaskGet, map[string]string{"id": id}, &got))
	require.Equal(t, "over nats", got["description"])

	var list map[string]any
	require.NoError(t, c.Do(ctx, ops.OpTaskList, ops.ListQuery{Priority: "urgent"}, &list))
	require.Equal(t, []string{id}, ids(list))

	err := c.Do(ctx, ops.OpTaskSubmit, map[string]any{"description": 1}, nil)
	var ce *client.CallError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, http.StatusUnprocessableEntity, ce.Status)
	require.Equal(t, "description", ce.Body.Errors[0].Field)

	err = c.Do(ctx, ops.OpTaskGet, map[string]string{"id": "task-missing"}, nil)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, http.StatusNotFound, ce.Status)

	require.NoError(t, c.Do(ctx, ops.OpTaskCancel, map[string]string{"id": id, "reason": "done"}, nil))
	require.NoError(t, c.Do(ctx, ops.OpTaskGet, map[string]string{"id": id}, &got))
	require.Equal(t, "cancelled", got["status"])

	err = c.Do(ctx, ops.Op{Name: "task.explode"}, nil, nil) // not in the table
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "unknown_command", ce.Body.Error)
}

func TestNATSRefusesBadTokens(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	_, err := client.Dial(config.Client{Hub: h.NATSURL(), Token: "ac_not_a_token"})
	require.ErrorContains(t, err, "token was refused")
	// Without credentials a client is only an observer: telemetry, nothing else.
	nc, err := nats.Connect(h.NATSURL(), nats.NoReconnect())
	require.NoError(t, err)
	defer nc.Close()
	_, err = nc.Request(broker.Command(broker.CmdTaskStats), nil, 2e9)
	require.Error(t, err)
}

func TestObserverCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(c *config.Hub) { c.Telemetry.Observer = "off" })
	_, err := nats.Connect(h.NATSURL(), nats.NoReconnect())
	require.ErrorContains(t, err, "Authorization")
}

func TestNATSRequestIDReachesEvents(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	nc, err := nats.Connect(h.NATSURL(), nats.Token(h.token))
	require.NoError(t, err)
	defer nc.Close()
	m := nats.NewMsg(broker.Command(broker.CmdTaskSubmit))
	m.Header.Set(protocol.HeaderRequestID, "req-trace-me")
	m.Data = []byte(`{"description":"traced"}`)
	resp, err := nc.RequestMsg(m, 5e9)
	require.NoError(t, err)
	require.Equal(t, "201", resp.Header.Get(protocol.HeaderStatus))
	require.Equal(t, "req-trace-me", resp.Header.Get(protocol.HeaderRequestID))
	res, err := storeops.ReplayStore(context.Background(), h.Store(), storeops.ReplayOpts{})
	require.NoError(t, err)
	require.Len(t, res.State.Tasks, 1)
	require.Equal(t, "req-trace-me", res.State.Tasks[0].History[0].RequestID)
}
