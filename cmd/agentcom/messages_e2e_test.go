package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// talker is an agent run by a real sidecar process whose exec command
// runs the task's description as a shell script, so a task can use the
// agentcom CLI as the agent. Its state and inbox directories outlive the
// process, so a restart finds them.
type talker struct {
	id, token, state, inbox string
	proc                    *sidecarProc
}

func newTalker(t *testing.T, h *hubProc, id string) *talker {
	t.Helper()
	out, errOut, code := cli(t, h, "token", "create", id)
	require.Equal(t, 0, code, errOut)
	dir := t.TempDir()
	return &talker{id: id, token: strings.TrimSpace(out), state: filepath.Join(dir, "state"), inbox: filepath.Join(dir, "inbox")}
}

func (a *talker) start(t *testing.T, h *hubProc) {
	t.Helper()
	a.proc = startSidecarArgs(t, a.id, "sidecar", "--agent-id", a.id, "--token", a.token, "--hub", h.natsURL,
		"--exec", `eval "$AGENTCOM_TASK_DESCRIPTION"`, "--state-dir", a.state, "--inbox-dir", a.inbox,
		"--capability", a.id, "--progress-interval", "200ms")
	require.Eventually(t, func() bool { return strings.Contains(a.proc.stdout(), `"mailbox read"`) }, 30*time.Second,
		20*time.Millisecond, "%s never read its mailbox", a.id)
}

// run has the agent run script as a task and returns its result.
func (a *talker) run(t *testing.T, h *hubProc, script string) json.RawMessage {
	t.Helper()
	body, err := json.Marshal(map[string]any{"description": script, "needed_capabilities": []string{a.id}})
	require.NoError(t, err)
	task := h.waitTask(t, h.submitTask(t, string(body)), "completed", 30*time.Second)
	return task.Result
}

// files are the messages in the agent's inbox directory, by file name.
func (a *talker) files(t *testing.T) map[string]protocol.Message {
	t.Helper()
	entries, err := os.ReadDir(a.inbox)
	require.NoError(t, err)
	out := map[string]protocol.Message{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(a.inbox, e.Name()))
		require.NoError(t, err)
		var m protocol.Message
		require.NoError(t, json.Unmarshal(b, &m), e.Name())
		out[e.Name()] = m
	}
	return out
}

// holds waits until the inbox has a message with body text, and returns
// how many files carry it.
func (a *talker) holds(t *testing.T, text string) int {
	t.Helper()
	n := 0
	require.Eventually(t, func() bool {
		n = 0
		for _, m := range a.files(t) {
			if bodyText(m) == text {
				n++
			}
		}
		return n > 0
	}, 30*time.Second, 20*time.Millisecond, "%s never got %q", a.id, text)
	return n
}

// TestAgentsTalkThroughRealSidecars: messages between real sidecar
// processes and an operator, with the CLI run inside tasks as the agent.
func TestAgentsTalkThroughRealSidecars(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	a1, a2, a3 := newTalker(t, h, "a1"), newTalker(t, h, "a2"), newTalker(t, h, "a3")
	for _, a := range []*talker{a1, a2, a3} {
		a.start(t, h)
	}

	// A direct message to an offline agent waits, and arrives once after
	// its sidecar is back, however often it restarts.
	a2.proc.terminate(t)
	var away protocol.Message
	raw := a1.run(t, h, bin+` send --to a2 --ack-required --subject handoff --json "while you were away"`)
	require.NoError(t, json.Unmarshal(raw, &away), string(raw))
	require.Equal(t, "a1", away.From, "the sender is the sidecar's agent")
	a2.start(t, h)
	require.Equal(t, 1, a2.holds(t, "while you were away"))
	a2.proc.terminate(t)
	a2.start(t, h)
	require.Equal(t, 1, a2.holds(t, "while you were away"), "a restart does not deliver it twice")
	require.NotContains(t, a2.proc.stdout(), "message received", "nor take it in again")
	var in protocol.Inbox
	require.NoError(t, json.Unmarshal(a2.run(t, h, bin+" inbox --json"), &in))
	require.Len(t, in.Messages, 1)
	require.Equal(t, away.ID, in.Messages[0].ID)
	require.True(t, in.Messages[0].AckRequired)
	a2.run(t, h, fmt.Sprintf("%s inbox ack %d", bin, away.Seq))
	require.Empty(t, a2.files(t), "an acknowledged message leaves the inbox")
	a2.proc.terminate(t)
	a2.start(t, h)
	require.Empty(t, a2.files(t), "and does not come back")

	// A broadcast from the operator reaches every agent.
	_, errOut, code := cli(t, h, "send", "all hands at noon")
	require.Equal(t, 0, code, errOut)
	for _, a := range []*talker{a1, a2, a3} {
		require.Equal(t, 1, a.holds(t, "all hands at noon"))
	}

	// A channel and a thread: a1 posts, a2 answers on the channel, a3
	// answers a2 directly; the thread is the tree, the history the channel.
	var root, reply, nested protocol.Message
	require.NoError(t, json.Unmarshal(a1.run(t, h, bin+" channel join build >/dev/null && "+bin+` send --channel build --json "the BUILD is red"`), &root))
	a2.run(t, h, bin+" channel join build")
	require.NoError(t, json.Unmarshal(a2.run(t, h, bin+" send --channel build --reply-to "+root.ID+` --json "on it"`), &reply))
	require.NoError(t, json.Unmarshal(a3.run(t, h, bin+" send --to a2 --reply-to "+reply.ID+` --json "fixed in main"`), &nested))
	require.Equal(t, 1, a1.holds(t, "on it"), "a channel message reaches its subscribers")
	require.Equal(t, 1, a2.holds(t, "fixed in main"))
	code, thread, err := h.get("/api/threads/" + nested.ID)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, root.ID, thread["thread_id"])
	require.Equal(t, [][2]string{{root.ID, ""}, {reply.ID, root.ID}, {nested.ID, reply.ID}}, tree(t, thread["messages"]))
	var history struct{ Messages []protocol.Message }
	require.NoError(t, json.Unmarshal(a2.run(t, h, bin+" channel history build --json"), &history))
	require.Equal(t, []string{"the BUILD is red", "on it"}, texts(history.Messages))

	// Search by text finds it whatever the case.
	out, errOut, code := cli(t, h, "messages", "--q", "build IS RED", "--json")
	require.Equal(t, 0, code, errOut)
	var found struct{ Messages []protocol.Message }
	require.NoError(t, json.Unmarshal([]byte(out), &found))
	require.Equal(t, []string{"the BUILD is red"}, texts(found.Messages))

	// A reservation from inside a task; another agent is refused it, and
	// told who holds it.
	var held protocol.Reservation
	require.NoError(t, json.Unmarshal(a1.run(t, h, bin+` reserve --project repo --ttl 10m --reason refactor --json src/main.go`), &held))
	require.Equal(t, "a1", held.AgentID)
	denied := a2.runFailing(t, h, bin+" reserve --project repo src/main.go || echo exit=$?")
	require.Contains(t, denied, "held by a1: src/main.go")
	require.Contains(t, denied, "exit=2")

	// The server's permissions stop an agent from reading another's
	// mailbox, sending as another or releasing another's reservation.
	refusedByServer(t, h, a2, []string{
		broker.AgentRequest("a1", broker.VerbInbox), broker.AgentRequest("a1", broker.VerbSend),
		broker.AgentRequest("a1", broker.VerbRelease),
	}, broker.Push("a1", broker.PushMessage))
	a1.run(t, h, bin+" release --project repo "+held.ID)
}

// runFailing runs script (which must end well) and returns its output,
// stdout and stderr together.
func (a *talker) runFailing(t *testing.T, h *hubProc, script string) string {
	t.Helper()
	var s string
	require.NoError(t, json.Unmarshal(a.run(t, h, "("+script+") 2>&1"), &s))
	return s
}

// refusedByServer connects with a's token and checks that the server
// refuses each publish and the subscription, naming the subject.
func refusedByServer(t *testing.T, h *hubProc, a *talker, publishes []string, subscribe string) {
	t.Helper()
	var mu sync.Mutex
	var errs []string
	nc, err := nats.Connect(h.natsURL, nats.Token(a.token), nats.CustomInboxPrefix(broker.AgentInbox(a.id)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, strings.ToLower(err.Error()))
		}))
	require.NoError(t, err)
	defer nc.Close()
	for _, subj := range publishes {
		_, err := nc.Request(subj, []byte(`{"to":"a3","body":"forged","project":"repo","id":"x"}`), 300*time.Millisecond)
		require.Error(t, err, "%s answered", subj)
	}
	_, err = nc.SubscribeSync(subscribe)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	wants := append(violations(publishes, "publish"), "subscription to \""+strings.ToLower(subscribe)+"\"")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		joined := strings.Join(errs, "\n")
		for _, w := range wants {
			if !strings.Contains(joined, w) {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "want permission violations for %v", wants)
}

func violations(subjects []string, kind string) []string {
	out := make([]string, len(subjects))
	for i, s := range subjects {
		out[i] = "permissions violation for " + kind + " to \"" + strings.ToLower(s) + "\""
	}
	return out
}

// tree is each message's id and the id it answers.
func tree(t *testing.T, v any) [][2]string {
	t.Helper()
	var msgs []protocol.Message
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &msgs))
	out := make([][2]string, len(msgs))
	for i, m := range msgs {
		out[i] = [2]string{m.ID, m.ReplyTo}
	}
	return out
}

func texts(msgs []protocol.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = bodyText(m)
	}
	return out
}
