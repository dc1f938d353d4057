package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// testAgent is an in-process agent speaking the sidecar protocol over a
// real NATS connection with its own agent token. Its work function decides
// what it does with each assignment.
type testAgent struct {
	id      string
	token   string
	session string
	nc      *nats.Conn
	work    func(a *testAgent, as protocol.Assignment)

	mu       sync.Mutex
	received []protocol.Assignment
	batches  []int // the size of each push of kind tasks
	aborts   []protocol.Abort
	// forget keeps no record of what is received (the memory benchmark
	// measures the hub, not its test agents).
	forget bool
}

// remember notes what a push brought, unless the agent forgets.
func (a *testAgent) remember(tasks []protocol.Assignment, batch bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.forget {
		return
	}
	a.received = append(a.received, tasks...)
	if batch {
		a.batches = append(a.batches, len(tasks))
	}
}

// completeAtOnce accepts and completes every assignment.
func completeAtOnce(a *testAgent, as protocol.Assignment) {
	if a.call(broker.VerbAccept, protocol.TaskRef{TaskID: as.TaskID, Generation: as.Generation}) == 200 {
		a.call(broker.VerbComplete, protocol.Complete{TaskID: as.TaskID, Generation: as.Generation, Result: json.RawMessage(`"done by ` + a.id + `"`)})
	}
}

// ignore never answers an assignment.
func ignore(*testAgent, protocol.Assignment) {}

func newTestAgent(t testing.TB, h *testHub, id string, caps []string, work func(*testAgent, protocol.Assignment)) *testAgent {
	t.Helper()
	a := dialTestAgent(t, h, id, work)
	require.Equal(t, 200, a.hello(caps))
	return a
}

// hello says hello with the agent's session and returns the status.
func (a *testAgent) hello(caps []string) int {
	return a.call(broker.VerbHello, protocol.Hello{Name: a.id, Capabilities: caps, Session: a.session})
}

// dialTestAgent connects an agent and takes its pushes, without a hello.
func dialTestAgent(t testing.TB, h *testHub, id string, work func(*testAgent, protocol.Assignment)) *testAgent {
	t.Helper()
	token, _, err := h.tokens.CreateAgent(context.Background(), id)
	require.NoError(t, err)
	nc, err := nats.Connect(h.NATSURL(), nats.Token(token), nats.CustomInboxPrefix(broker.AgentInbox(id)), nats.NoReconnect())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	a := &testAgent{id: id, session: "s-" + id, nc: nc, work: work, token: token}
	_, err = nc.Subscribe("agentcom.push."+id+".>", func(m *nats.Msg) {
		switch m.Subject {
		case broker.Push(id, broker.PushTask):
			var as protocol.Assignment
			require.NoError(t, json.Unmarshal(m.Data, &as))
			a.remember([]protocol.Assignment{as}, false)
			go a.work(a, as)
		case broker.Push(id, broker.PushTasks):
			var push protocol.Assignments
			require.NoError(t, json.Unmarshal(m.Data, &push))
			a.remember(push.Tasks, true)
			for _, as := range push.Tasks {
				go a.work(a, as)
			}
		case broker.Push(id, broker.PushAbort):
			var ab protocol.Abort
			require.NoError(t, json.Unmarshal(m.Data, &ab))
			a.mu.Lock()
			a.aborts = append(a.aborts, ab)
			a.mu.Unlock()
		}
	})
	require.NoError(t, err)
	return a
}

// call sends one request and returns the reply's status.
func (a *testAgent) call(verb string, body any) int {
	status, _ := a.request(verb, body)
	return status
}

// request sends one request and returns the reply's status and body. A
// 429 (over the agent's request budget) is sent again after a pause, as
// a sidecar does: an agent that gave up there would hold its task until
// the hub took it back, and a benchmark's queue would stall.
func (a *testAgent) request(verb string, body any) (int, []byte) {
	b, _ := json.Marshal(body)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		resp, err := a.nc.Request(broker.AgentRequest(a.id, verb), b, 10*time.Second)
		if err != nil {
			return 0, nil
		}
		status, _ := strconv.Atoi(resp.Header.Get(protocol.HeaderStatus))
		if status != http.StatusTooManyRequests {
			return status, resp.Data
		}
		time.Sleep(wait)
	}
}

func (a *testAgent) assignments() []protocol.Assignment {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]protocol.Assignment(nil), a.received...)
}

// reconnectAs opens a second connection with an agent's token.
func reconnectAs(t testing.TB, h *testHub, a *testAgent) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(h.NATSURL(), nats.Token(a.token), nats.CustomInboxPrefix(broker.AgentInbox(a.id)), nats.NoReconnect())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}
