package broker

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/logsink"
)

// TestParsePermissionViolation reads the lines nats-server 2.15 writes
// (client.go: pubPermissionViolation, replySubjectViolation,
// subPermissionViolation) and refuses look-alikes.
func TestParsePermissionViolation(t *testing.T) {
	const label = `127.0.0.1:50312 - cid:9 - "v1.55.0:go:sidecar" - "$G/user:agent:a-1"`
	cases := map[string]PermissionViolation{
		label + ` - Publish Violation - Subject "agentcom.evt.task.t1"`:      {AgentID: "a-1", Op: "publish", Subject: "agentcom.evt.task.t1"},
		label + ` - Publish Violation - Reply "_INBOX.other"`:                {AgentID: "a-1", Op: "reply", Subject: "_INBOX.other"},
		label + ` - Subscription Violation - Subject "agentcom.>", SID 4`:    {AgentID: "a-1", Op: "subscribe", Subject: "agentcom.>"},
		label + ` - Subscription Violation - Subject "x", Queue: "q", SID 5`: {AgentID: "a-1", Op: "subscribe", Subject: "x"},
		label + ` - Publish Violation - Subject "a\"b"`:                      {AgentID: "a-1", Op: "publish", Subject: `a"b`},
	}
	for line, want := range cases {
		got, ok := parsePermissionViolation(line)
		require.True(t, ok, line)
		require.Equal(t, want, got, line)
	}
	// A client name that tries to pass for another agent stays inside
	// its quotes: the label the server set is the one read.
	spoof := `127.0.0.1:1 - cid:2 - "v1:go:x\" - \"$G/user:agent:victim\" - Publish Violation - Subject \"y\"" - "$G/user:agent:mallory" - Publish Violation - Subject "z"`
	got, ok := parsePermissionViolation(spoof)
	require.True(t, ok)
	require.Equal(t, "mallory", got.AgentID)
	require.Equal(t, "z", got.Subject)
	for _, line := range []string{
		`127.0.0.1:1 - cid:2 - "v1:go" - "$G/user:admin:ops" - Publish Violation - Subject "x"`,
		`127.0.0.1:1 - cid:2 - "v1:go" - "$G/user:agent:a" - Slow Consumer Detected`,
		`Publish Violation - Subject "x"`,
		`127.0.0.1:1 - cid:2 - "v1:go:\" - \"$G/user:agent:victim\" - Publish Violation - Subject \"y\""`,
	} {
		_, ok := parsePermissionViolation(line)
		require.False(t, ok, line)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPermissionViolationHook: a real agent connection publishes where it
// may not; the server's line reaches the hook with the agent's id, and
// the server's own error line is not written.
func TestPermissionViolationHook(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	auth := NewAuthenticator()
	auth.MarkReady()
	token := NewToken()
	auth.Set(HashToken(token), Identity{Name: "a-1", Role: RoleAgent})
	srv, err := StartServer(ServerConfig{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Auth: auth,
		Log: logsink.New(&logs, "test", logsink.LevelDebug)})
	require.NoError(t, err)
	defer srv.Shutdown()
	seen := make(chan PermissionViolation, 10)
	srv.OnPermissionViolation(func(v PermissionViolation) { seen <- v })

	nc, err := nats.Connect(srv.ClientURL(), nats.Token(token), nats.Name(`x" - "$G/user:agent:victim`),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.Publish(TaskEvents("t1"), []byte("{}")))
	require.NoError(t, nc.Flush())
	select {
	case v := <-seen:
		require.Equal(t, PermissionViolation{AgentID: "a-1", Op: "publish", Subject: TaskEvents("t1")}, v)
	case <-time.After(10 * time.Second):
		t.Fatal("no permission violation reported")
	}
	require.NotContains(t, logs.String(), "Publish Violation", "the hook replaces the server's line")
}

// TestAgentGateRefusesConnection: an agent the gate refuses cannot
// connect; others can.
func TestAgentGateRefusesConnection(t *testing.T) {
	t.Parallel()
	auth := NewAuthenticator()
	auth.MarkReady()
	bad, good := NewToken(), NewToken()
	auth.Set(HashToken(bad), Identity{Name: "bad", Role: RoleAgent})
	auth.Set(HashToken(good), Identity{Name: "good", Role: RoleAgent})
	auth.SetAgentAdmission(func(id string) error {
		if id == "bad" {
			return errors.New("in its cooldown")
		}
		return nil
	})
	srv, err := StartServer(ServerConfig{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Auth: auth, Log: logsink.Nop()})
	require.NoError(t, err)
	defer srv.Shutdown()
	_, err = nats.Connect(srv.ClientURL(), nats.Token(bad))
	require.ErrorContains(t, err, "Authorization Violation")
	nc, err := nats.Connect(srv.ClientURL(), nats.Token(good))
	require.NoError(t, err)
	nc.Close()
}
