package sidecar

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

func message(seq uint64, text string) protocol.Message {
	body, _ := json.Marshal(text)
	return protocol.Message{ID: "msg-" + text, Seq: seq, From: "a2", To: "agent-1", Type: "text", Body: body,
		ThreadID: "msg-" + text, Importance: "normal"}
}

// inboxFiles are the inbox directory's message files, by name.
func inboxFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names
}

// The mailbox read after hello and the pushes land in the inbox once each;
// the relay lists them, passes an ack to the hub as the agent, and then
// removes what the cursor covers.
func TestInboxTakesMailboxAndPushesOnce(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	h.answer(broker.VerbInbox, func(hubReq) (int, any) {
		return 200, protocol.Inbox{Messages: []protocol.Message{message(5, "waited")}, Cursor: 3}
	})
	h.answer(broker.VerbAck, func(r hubReq) (int, any) {
		var a protocol.Ack
		r.decode(t, &a)
		return 200, a
	})
	cfg := h.config("echo $"+SocketVar, t.TempDir())
	s, _ := start(t, cfg)
	inboxDir := filepath.Join(cfg.StateDir, "inbox")
	want := "000000000005-msg-waited.json"
	require.Eventually(t, func() bool { return len(inboxFiles(t, inboxDir)) == 1 }, wait, tick)
	require.Equal(t, []string{want}, inboxFiles(t, inboxDir))

	h.push(broker.PushMessage, message(5, "waited")) // again: no second file
	h.push(broker.PushMessage, message(7, "pushed"))
	require.Eventually(t, func() bool { return len(inboxFiles(t, inboxDir)) == 2 }, wait, tick)

	ctx := context.Background()
	var in protocol.Inbox
	_, err := RelayCall(ctx, s.RelaySocket(), broker.VerbInbox, "req-list", struct{}{}, &in)
	require.NoError(t, err)
	require.Equal(t, []string{"msg-waited", "msg-pushed"}, []string{in.Messages[0].ID, in.Messages[1].ID})

	_, err = RelayCall(ctx, s.RelaySocket(), broker.VerbAck, "req-ack", protocol.Ack{Seq: 5}, nil)
	require.NoError(t, err)
	ack := h.waitFor(broker.VerbAck, 1)
	require.Equal(t, "req-ack", ack.RequestID, "the relay passes the request id on")
	require.Equal(t, []string{"000000000007-msg-pushed.json"}, inboxFiles(t, inboxDir))

	h.answer(broker.VerbSend, func(hubReq) (int, any) {
		return http.StatusForbidden, protocol.Error{Error: "not_subscribed", Detail: "join it first"}
	})
	_, err = RelayCall(ctx, s.RelaySocket(), broker.VerbSend, "req-send", protocol.Send{Channel: "x"}, nil)
	var he *HubError
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusForbidden, he.Status, "the hub's answer is passed back")
	require.Equal(t, "not_subscribed", he.Code)

	_, err = RelayCall(ctx, s.RelaySocket(), broker.VerbComplete, "req-x", struct{}{}, nil)
	require.ErrorAs(t, err, &he)
	require.Equal(t, http.StatusNotFound, he.Status, "a task's own verbs are not relayed")
	require.Empty(t, h.requests(broker.VerbComplete))

	a := h.assign("t-env", 1)
	done := h.waitFor(broker.VerbComplete, 1)
	var c protocol.Complete
	done.decode(t, &c)
	require.Equal(t, a.TaskID, c.TaskID)
	require.JSONEq(t, mustJSON(t, s.RelaySocket()), string(c.Result), "the command is told where the relay is")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// A restarted sidecar finds the inbox it left, and the relay socket is the
// owner's alone; a state directory too deep for a socket gets one in a
// private temporary directory, removed at stop.
func TestRelaySocketAndInboxOutliveARestart(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	cfg := h.config("true", t.TempDir())
	s, _ := start(t, cfg)
	h.waitFor(broker.VerbHello, 1) // subscribed by then
	h.push(broker.PushMessage, message(9, "kept"))
	require.Eventually(t, func() bool { return len(inboxFiles(t, filepath.Join(cfg.StateDir, "inbox"))) == 1 }, wait, tick)
	fi, err := os.Stat(s.RelaySocket())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Equal(t, filepath.Join(cfg.StateDir, relaySocket), s.RelaySocket())
	s.Stop()
	_, err = os.Stat(s.RelaySocket())
	require.ErrorIs(t, err, os.ErrNotExist, "the socket is removed at stop")

	deep := filepath.Join(cfg.StateDir, strings.Repeat("d", 60), strings.Repeat("e", 60))
	cfg2 := cfg
	cfg2.StateDir, cfg2.InboxDir = deep, filepath.Join(cfg.StateDir, "inbox")
	again := New(cfg2, logsink.New(os.Stderr, "test", logsink.LevelWarning))
	require.NoError(t, again.Start(context.Background()))
	t.Cleanup(again.Stop)
	require.NotContains(t, again.RelaySocket(), deep)
	var in protocol.Inbox
	_, err = RelayCall(context.Background(), again.RelaySocket(), broker.VerbInbox, "req-1", struct{}{}, &in)
	require.NoError(t, err)
	require.Len(t, in.Messages, 1, "the inbox outlived the restart")
	require.Equal(t, "msg-kept", in.Messages[0].ID)
	again.Stop()
	_, err = os.Stat(filepath.Dir(again.RelaySocket()))
	require.ErrorIs(t, err, os.ErrNotExist, "the temporary socket directory is removed at stop")
}
