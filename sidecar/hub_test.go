package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/logsink/logtest"
	"github.com/agentcom/agentcom/protocol"
)

const (
	wait = 10 * time.Second
	tick = 10 * time.Millisecond
)

// hubReq is one request the test hub received.
type hubReq struct {
	Verb      string
	RequestID string
	Data      []byte
}

func (r hubReq) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Data, v))
}

// answerFunc answers one request: a status and a body.
type answerFunc func(r hubReq) (int, any)

// testHub plays the hub on the hub's own connection to a real embedded
// server: it answers the agent's requests and pushes to it.
type testHub struct {
	t       *testing.T
	b       *brokertest.Bundle
	agentID string
	token   string
	hbMS    int64

	mu      sync.Mutex
	reqs    []hubReq
	answers map[string]answerFunc
	sub     *nats.Subscription
	conn    *nats.Conn
}

func newTestHub(t *testing.T) *testHub {
	t.Helper()
	b := brokertest.Start(t, 0)
	h := &testHub{t: t, b: b, agentID: "agent-1", token: broker.NewToken(), hbMS: 50,
		answers: map[string]answerFunc{}}
	b.Auth.Set(broker.HashToken(h.token), broker.Identity{Name: h.agentID, Role: broker.RoleAgent})
	h.serve(b.Conn)
	return h
}

// serve answers agent requests on nc.
func (h *testHub) serve(nc *nats.Conn) {
	sub, err := nc.Subscribe(broker.AgentRequestsAll, h.handle)
	require.NoError(h.t, err)
	require.NoError(h.t, nc.Flush())
	h.mu.Lock()
	h.sub, h.conn = sub, nc
	h.mu.Unlock()
}

func (h *testHub) handle(m *nats.Msg) {
	parts := strings.Split(m.Subject, ".")
	r := hubReq{Verb: parts[len(parts)-1], RequestID: m.Header.Get(protocol.HeaderRequestID), Data: m.Data}
	h.mu.Lock()
	h.reqs = append(h.reqs, r)
	answer := h.answers[r.Verb]
	h.mu.Unlock()
	status, body := 200, any(map[string]string{"status": "ok"})
	if answer != nil {
		status, body = answer(r)
	} else if r.Verb == broker.VerbHello {
		body = h.defaultHello(r)
	}
	if status == 0 {
		return // no reply at all
	}
	reply := nats.NewMsg(m.Reply)
	reply.Header.Set(protocol.HeaderStatus, strconv.Itoa(status))
	reply.Data, _ = json.Marshal(body)
	_ = m.RespondMsg(reply)
}

// defaultHello continues any held task.
func (h *testHub) defaultHello(r hubReq) protocol.HelloReply {
	var hello protocol.Hello
	_ = json.Unmarshal(r.Data, &hello)
	reply := protocol.HelloReply{Timings: protocol.Timings{HeartbeatIntervalMS: h.hbMS}}
	for _, held := range hello.Holdings() {
		reply.Tasks = append(reply.Tasks, protocol.Settled{TaskID: held.TaskID, Generation: held.Generation,
			Action: protocol.ActionContinue})
	}
	return reply
}

// firstHeld is the first task a hello reports, or nil.
func firstHeld(held []protocol.Holding) *protocol.Holding {
	if len(held) == 0 {
		return nil
	}
	return &held[0]
}

// answer sets how a verb is answered from now on.
func (h *testHub) answer(verb string, f answerFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answers[verb] = f
}

func (h *testHub) requests(verb string) []hubReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hubReq
	for _, r := range h.reqs {
		if r.Verb == verb {
			out = append(out, r)
		}
	}
	return out
}

// waitFor waits until n requests of verb arrived and returns the nth.
func (h *testHub) waitFor(verb string, n int) hubReq {
	h.t.Helper()
	require.Eventually(h.t, func() bool { return len(h.requests(verb)) >= n }, wait, tick,
		"want %d %s request(s)", n, verb)
	return h.requests(verb)[n-1]
}

// push sends a push to the agent.
func (h *testHub) push(kind string, v any) {
	h.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(h.t, err)
	h.mu.Lock()
	nc := h.conn
	h.mu.Unlock()
	require.NoError(h.t, nc.Publish(broker.Push(h.agentID, kind), b))
	require.NoError(h.t, nc.Flush())
}

// assign pushes an assignment.
func (h *testHub) assign(id string, gen uint64) protocol.Assignment {
	h.t.Helper()
	a := protocol.Assignment{TaskID: id, Generation: gen, Description: "do " + id + " (it's urgent)",
		Priority: "high", Metadata: json.RawMessage(`{"repo":"agentcom"}`), RequestID: "req-" + id}
	h.push(broker.PushTask, a)
	return a
}

// testConfig is a config with short timings for h.
func (h *testHub) config(mode string, stateDir string) Config {
	c := Config{
		AgentID: h.agentID, Token: h.token, Hub: h.b.Server.ClientURL(), Name: "Agent One",
		Capabilities: []string{"code", "docs"}, StateDir: stateDir,
		ProgressInterval: 40 * time.Millisecond, RequestTimeout: 2 * time.Second,
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		WakeTimeout: 5 * time.Second, WakeRetryDelays: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond},
		ResultPoll: 10 * time.Millisecond, KillGrace: time.Second,
	}
	if strings.HasPrefix(mode, "wake:") {
		c.Wake = strings.TrimPrefix(mode, "wake:")
	} else {
		c.Exec = mode
	}
	return c
}

// start starts a sidecar with cfg and stops it when the test ends. Its
// logs are printed if the test fails.
func start(t *testing.T, cfg Config) (*Sidecar, *logtest.Buffer) {
	t.Helper()
	logs := &logtest.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sidecar logs:\n%s", logs.String())
		}
	})
	s := New(cfg, logsink.New(logs, "test", logsink.LevelDebug))
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(s.Stop)
	return s, logs
}

// hello waits for the nth hello and decodes it.
func (h *testHub) hello(n int) protocol.Hello {
	h.t.Helper()
	var hello protocol.Hello
	h.waitFor(broker.VerbHello, n).decode(h.t, &hello)
	return hello
}

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return fmt.Sprint(string(b))
}
