package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

func TestRestartReportsHeldTaskAndContinueReruns(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	dir, state := t.TempDir(), t.TempDir()
	cmd := fmt.Sprintf(`echo run >> %[1]s/runs; if [ -f %[1]s/go ]; then echo '"done"'; else sleep 300; fi`, shellQuote(dir))
	first, _ := start(t, h.config(cmd, state))
	h.hello(1)
	a := h.assign("t1", 3)
	h.waitFor(broker.VerbProgress, 1)
	first.Stop()

	recs := stateOf(t, state)
	require.Len(t, recs, 1, "a stopped sidecar keeps its task")
	require.Equal(t, statusWorking, recs[0].Status)
	require.Equal(t, a, recs[0].Assignment)
	require.Nil(t, recs[0].Outcome)
	require.Empty(t, h.requests(broker.VerbComplete))
	require.Empty(t, h.requests(broker.VerbFail))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go"), nil, 0o600))

	second, _ := start(t, h.config(cmd, state))
	hello := h.hello(2)
	require.Equal(t, &protocol.Holding{TaskID: "t1", Generation: 3, Status: statusWorking}, firstHeld(hello.Held))
	require.Equal(t, second.Session(), hello.Session)
	require.NotEqual(t, first.Session(), hello.Session)

	c := h.waitFor(broker.VerbComplete, 1)
	var done protocol.Complete
	c.decode(t, &done)
	require.JSONEq(t, `"done"`, string(done.Result))
	require.Equal(t, "req-t1", c.RequestID)
	require.Len(t, h.requests(broker.VerbAccept), 1, "a working task is not accepted again")
	require.Equal(t, "run\nrun\n", readString(t, filepath.Join(dir, "runs")))
	requireStateCleared(t, state)
}

// startOrphan starts a process group as a crashed sidecar's command would
// have left it: with the task's marker in its environment, or not.
func startOrphan(t *testing.T, taskID string, env ...string) (pid int, exited <-chan struct{}) {
	t.Helper()
	cmd := exec.Command("sh", "-c", "sleep 300")
	if taskID != "" {
		cmd.Env = append(append(os.Environ(), markerVar+"="+taskID), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	pid = cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return pid, done
}

func closedSoon(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		t.Fatal(msg)
	}
}

func persist(t *testing.T, dir string, recs ...record) {
	t.Helper()
	require.NoError(t, store{dir: dir}.save(recs))
}

func TestRestartAbortClearsStateAndKillsOrphan(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	dir, state := t.TempDir(), t.TempDir()
	pid, exited := startOrphan(t, "t1")
	a := protocol.Assignment{TaskID: "t1", Generation: 2, RequestID: "req-t1"}
	persist(t, state, record{Assignment: a, Status: statusWorking, PGID: pid})
	h.answer(broker.VerbHello, func(hubReq) (int, any) {
		return 200, protocol.HelloReply{Timings: protocol.Timings{HeartbeatIntervalMS: 50}, Action: protocol.ActionAbort, Reason: "reassigned"}
	})
	start(t, h.config(fmt.Sprintf("touch %s/ran", shellQuote(dir)), state))

	require.Equal(t, &protocol.Holding{TaskID: "t1", Generation: 2, Status: statusWorking}, firstHeld(h.hello(1).Held))
	closedSoon(t, exited, "the orphaned process group was not killed")
	requireStateCleared(t, state)
	h.waitFor(broker.VerbHeartbeat, 2)
	require.NoFileExists(t, filepath.Join(dir, "ran"))
	for _, verb := range []string{broker.VerbAccept, broker.VerbComplete, broker.VerbFail, broker.VerbProgress} {
		require.Empty(t, h.requests(verb), verb)
	}
}

func TestRestartContinueKillsOrphanThenReruns(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	state := t.TempDir()
	pid, exited := startOrphan(t, "t1")
	a := protocol.Assignment{TaskID: "t1", Generation: 2, RequestID: "req-t1"}
	persist(t, state, record{Assignment: a, Status: statusWorking, PGID: pid})
	start(t, h.config(`echo '"again"'`, state))

	closedSoon(t, exited, "the orphaned process group was not killed")
	var c protocol.Complete
	h.waitFor(broker.VerbComplete, 1).decode(t, &c)
	require.JSONEq(t, `"again"`, string(c.Result))
	requireStateCleared(t, state)
}

func TestRestartReportsPersistedOutcomeWithoutRerunning(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	dir, state := t.TempDir(), t.TempDir()
	a := protocol.Assignment{TaskID: "t1", Generation: 2, RequestID: "req-t1"}
	out := failed("it broke")
	persist(t, state, record{Assignment: a, Status: statusWorking, Outcome: &out})
	start(t, h.config(fmt.Sprintf("touch %s/ran", shellQuote(dir)), state))

	var f protocol.Fail
	r := h.waitFor(broker.VerbFail, 1)
	r.decode(t, &f)
	require.Equal(t, protocol.Fail{TaskID: "t1", Generation: 2, Error: "it broke"}, f)
	require.Equal(t, "req-t1", r.RequestID)
	requireStateCleared(t, state)
	require.NoFileExists(t, filepath.Join(dir, "ran"))
}

func TestRestartWithAssignedTaskAcceptsAgain(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	state := t.TempDir()
	a := protocol.Assignment{TaskID: "t1", Generation: 2, RequestID: "req-t1"}
	persist(t, state, record{Assignment: a, Status: statusAssigned})
	start(t, h.config("echo 1", state))

	require.Equal(t, &protocol.Holding{TaskID: "t1", Generation: 2, Status: statusAssigned}, firstHeld(h.hello(1).Held))
	var acc protocol.TaskRef
	h.waitFor(broker.VerbAccept, 1).decode(t, &acc)
	require.Equal(t, protocol.TaskRef{TaskID: "t1", Generation: 2}, acc)
	h.waitFor(broker.VerbComplete, 1)
	requireStateCleared(t, state)
}

func TestWakeRestartWaitsForResultWithoutWakingAgain(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	dir, results, state := t.TempDir(), t.TempDir(), t.TempDir()
	a := protocol.Assignment{TaskID: "t1", Generation: 2, RequestID: "req-t1"}
	persist(t, state, record{Assignment: a, Status: statusWorking, Woken: true})
	cfg := h.config(fmt.Sprintf("wake:touch %s/woken", shellQuote(dir)), state)
	cfg.ResultsDir = results
	start(t, cfg)

	h.waitFor(broker.VerbProgress, 2)
	writeResult(t, filepath.Join(results, "t1.json"), `{"status":"success","result":[1]}`)
	var c protocol.Complete
	h.waitFor(broker.VerbComplete, 1).decode(t, &c)
	require.JSONEq(t, `[1]`, string(c.Result))
	require.NoFileExists(t, filepath.Join(dir, "woken"))
}

func TestReconnectAfterServerRestart(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	dir := t.TempDir()
	s, _ := start(t, h.config(longCmd(dir), t.TempDir()))
	h.hello(1)
	h.assign("t1", 1)
	pid := readPID(t, filepath.Join(dir, "pid"))
	h.waitFor(broker.VerbProgress, 1)

	u, err := url.Parse(h.b.Server.ClientURL())
	require.NoError(t, err)
	h.b.Server.Shutdown()
	// The old server may hold its port a moment after Shutdown returns, and
	// a busy port fails a start at once: try again until it is free.
	var srv *broker.Server
	require.Eventually(t, func() bool {
		srv, err = broker.StartServer(broker.ServerConfig{Listen: u.Host, DataDir: h.b.DataDir, Auth: h.b.Auth, Log: logsink.Nop()})
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the server never started again on %s", u.Host)
	t.Cleanup(srv.Shutdown)
	nc, err := srv.ConnectInProcess(h.b.Auth.HubSecret(), "test hub again")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	h.serve(nc)

	hello := h.hello(2)
	require.Equal(t, s.Session(), hello.Session, "one session per process")
	require.Equal(t, &protocol.Holding{TaskID: "t1", Generation: 1, Status: statusWorking}, firstHeld(hello.Held))
	n := len(h.requests(broker.VerbProgress))
	h.waitFor(broker.VerbProgress, n+2)
	require.False(t, processGone(pid), "the work goes on across the reconnect")
}

func TestUnknownSessionSaysHelloAgain(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	calls := 0
	h.answer(broker.VerbHeartbeat, func(hubReq) (int, any) {
		calls++
		if calls == 2 {
			return 409, protocol.Error{Error: "unknown_session"}
		}
		return 200, map[string]string{}
	})
	s, _ := start(t, h.config("true", t.TempDir()))
	require.Equal(t, s.Session(), h.hello(2).Session)
}

func TestStateDirIsLocked(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	state := t.TempDir()
	start(t, h.config("true", state))
	other := New(h.config("true", state), logsink.Nop())
	err := other.Start(context.Background())
	require.ErrorIs(t, err, errStateLocked)
	other.Stop()
}

func TestUnreadableStateIsMovedAside(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	state := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(state, stateFile), []byte("{garbage"), 0o600))
	start(t, h.config("true", state))
	require.Nil(t, firstHeld(h.hello(1).Held))
	moved, err := filepath.Glob(filepath.Join(state, stateFile+".corrupt-*"))
	require.NoError(t, err)
	require.Len(t, moved, 1)
	require.Equal(t, "{garbage", readString(t, moved[0]))
}

func TestWrongAgentIDStops(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	cfg := h.config("true", t.TempDir())
	cfg.AgentID = "agent-2" // the token is agent-1's
	s, _ := start(t, cfg)
	closedSoon(t, s.Done(), "Done not closed")
	require.ErrorContains(t, s.Err(), `does agent_id "agent-2" match the token?`)
}

func TestStartDoesNotWaitForHub(t *testing.T) {
	t.Parallel()
	cfg := Config{AgentID: "a1", Token: "tok", Hub: "nats://127.0.0.1:1", Exec: "true", StateDir: t.TempDir(),
		RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	s := New(cfg, logsink.Nop())
	require.NoError(t, s.Start(context.Background()))
	s.Stop()
	s.Stop()
}

func TestStoreRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := store{dir: dir}
	recs, err := st.load()
	require.NoError(t, err)
	require.Empty(t, recs)

	out := succeeded(json.RawMessage(`{"x":1}`))
	want := []record{
		{Assignment: protocol.Assignment{TaskID: "a", Generation: 1, Metadata: json.RawMessage(`{"k":"v"}`)}, Status: statusAssigned},
		{Assignment: protocol.Assignment{TaskID: "b", Generation: 2}, Status: statusWorking, Woken: true, PGID: 42, Outcome: &out},
	}
	require.NoError(t, st.save(want))
	got, err := st.load()
	require.NoError(t, err)
	require.Equal(t, want, got)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left")

	require.NoError(t, st.save(nil))
	require.NoFileExists(t, st.path())
	require.NoError(t, st.save(nil), "removing twice is fine")
}

func TestRefusedTokenStops(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	cfg := h.config("true", t.TempDir())
	cfg.Token = broker.NewToken() // unknown to the hub
	s, _ := start(t, cfg)
	closedSoon(t, s.Done(), "Done not closed")
	require.ErrorContains(t, s.Err(), `hub refused the token of agent "agent-1"`)
}

// A crash between the hub recording the accept and the sidecar persisting
// "working" leaves "assigned" in state while the hub has it working.
func TestRestartAssignedTaskAlreadyAcceptedWorksOn(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	state := t.TempDir()
	a := protocol.Assignment{TaskID: "t1", Generation: 2, RequestID: "req-t1"}
	persist(t, state, record{Assignment: a, Status: statusAssigned})
	h.answer(broker.VerbAccept, func(hubReq) (int, any) {
		return 409, protocol.Error{Error: "invalid_state", Detail: "task t1 is working"}
	})
	start(t, h.config("echo 1", state))

	h.waitFor(broker.VerbAccept, 1)
	var c protocol.Complete
	h.waitFor(broker.VerbComplete, 1).decode(t, &c)
	require.JSONEq(t, `1`, string(c.Result))
	requireStateCleared(t, state)
}
