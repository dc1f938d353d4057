package sidecar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/protocol"
)

// processGone reports whether pid has exited (a zombie counts as gone).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// readPID waits for a pid file written by a test command.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, wait, tick)
	return pid
}

// stateOf returns the persisted tasks of a state dir.
func stateOf(t *testing.T, dir string) []record {
	t.Helper()
	recs, err := store{dir: dir}.load()
	require.NoError(t, err)
	return recs
}

func requireStateCleared(t *testing.T, dir string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, stateFile))
		return errors.Is(err, os.ErrNotExist)
	}, wait, tick, "state file still present")
}

func TestHelloCarriesNameCapabilitiesSessionThenHeartbeats(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	s, _ := start(t, h.config("true", t.TempDir()))

	hello := h.hello(1)
	require.Equal(t, protocol.Hello{Name: "Agent One", Capabilities: []string{"code", "docs"}, Session: s.Session(), MaxTasks: 1}, hello)
	require.Regexp(t, `^sess-[0-9a-f]{16}$`, hello.Session)
	require.Regexp(t, `^req-[0-9a-f]{16}$`, h.requests(broker.VerbHello)[0].RequestID)

	var hb protocol.Heartbeat
	h.waitFor(broker.VerbHeartbeat, 3).decode(t, &hb)
	require.Equal(t, s.Session(), hb.Session)
	ids := map[string]bool{}
	for _, r := range h.requests(broker.VerbHeartbeat) {
		ids[r.RequestID] = true
	}
	require.Len(t, ids, len(h.requests(broker.VerbHeartbeat)), "every request has a fresh id")

	s.Stop()
	var bye protocol.Heartbeat
	h.waitFor(broker.VerbBye, 1).decode(t, &bye)
	require.Equal(t, s.Session(), bye.Session)
	s.Stop() // twice is fine
}

func TestExecCompletesWithJSONResultEnvAndStdin(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	dir, state := t.TempDir(), t.TempDir()
	var atAccept []record
	h.answer(broker.VerbAccept, func(hubReq) (int, any) {
		atAccept, _ = store{dir: state}.load() // persisted before accepting?
		return 200, map[string]string{"status": "working"}
	})
	cmd := fmt.Sprintf(`env > %[1]s/env; cat > %[1]s/stdin.json; echo '{"ok": true, "n": [1, 2]}'`, shellQuote(dir))
	start(t, h.config(cmd, state))
	h.hello(1)

	a := h.assign("t1", 7)
	var acc protocol.TaskRef
	accReq := h.waitFor(broker.VerbAccept, 1)
	accReq.decode(t, &acc)
	require.Equal(t, protocol.TaskRef{TaskID: "t1", Generation: 7}, acc)
	require.Equal(t, "req-t1", accReq.RequestID, "reports carry the assignment's request id")

	var done protocol.Complete
	compReq := h.waitFor(broker.VerbComplete, 1)
	compReq.decode(t, &done)
	require.Len(t, atAccept, 1, "persisted before accepting")
	require.Equal(t, statusAssigned, atAccept[0].Status)
	require.Equal(t, a, atAccept[0].Assignment)
	require.Equal(t, "req-t1", compReq.RequestID)
	require.Equal(t, "t1", done.TaskID)
	require.EqualValues(t, 7, done.Generation)
	require.JSONEq(t, `{"ok":true,"n":[1,2]}`, string(done.Result))
	requireStateCleared(t, state)

	env, err := os.ReadFile(filepath.Join(dir, "env"))
	require.NoError(t, err)
	for _, kv := range []string{"AGENTCOM_TASK_ID=t1", "AGENTCOM_TASK_DESCRIPTION=do t1 (it's urgent)",
		"AGENTCOM_TASK_GENERATION=7", "AGENTCOM_TASK_PRIORITY=high",
		`AGENTCOM_TASK_METADATA={"repo":"agentcom"}`, "AGENTCOM_REQUEST_ID=req-t1"} {
		require.Contains(t, strings.Split(string(env), "\n"), kv)
	}
	require.NotContains(t, string(env), "AGENTCOM_TOKEN")
	var in protocol.Assignment
	b, err := os.ReadFile(filepath.Join(dir, "stdin.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &in))
	require.Equal(t, a, in)
	require.Empty(t, h.requests(broker.VerbFail))
}

func TestExecResults(t *testing.T) {
	t.Parallel()
	long := `head -c 5000 /dev/zero | tr '\0' a >&2; printf END >&2; exit 1`
	tests := []struct {
		name, cmd  string
		wantResult string // JSON, for complete
		wantError  string // for fail
	}{
		{name: "text becomes a JSON string", cmd: `echo 'hello "world"'`, wantResult: `"hello \"world\""`},
		{name: "only one trailing newline is trimmed", cmd: `printf 'a\n\n'`, wantResult: `"a\n"`},
		{name: "empty stdout", cmd: `true`, wantResult: `""`},
		{name: "JSON number", cmd: `echo 42`, wantResult: `42`},
		{name: "stderr tail", cmd: `echo partial; echo oops >&2; exit 3`, wantError: "oops"},
		{name: "exit status without stderr", cmd: `exit 4`, wantError: "exit status 4"},
		{name: "last 2000 bytes of stderr", cmd: long, wantError: strings.Repeat("a", 1997) + "END"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newTestHub(t)
			start(t, h.config(tc.cmd, t.TempDir()))
			h.hello(1)
			h.assign("t1", 1)
			if tc.wantError != "" {
				var f protocol.Fail
				h.waitFor(broker.VerbFail, 1).decode(t, &f)
				require.Equal(t, tc.wantError, f.Error)
				require.Empty(t, h.requests(broker.VerbComplete))
				return
			}
			var c protocol.Complete
			h.waitFor(broker.VerbComplete, 1).decode(t, &c)
			require.JSONEq(t, tc.wantResult, string(c.Result))
		})
	}
}

func TestBusyDeclinesAndDuplicatePushIsIgnored(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	start(t, h.config("sleep 30", t.TempDir()))
	h.hello(1)
	h.assign("t1", 1)
	h.waitFor(broker.VerbAccept, 1)
	h.assign("t1", 1) // the same push again
	h.assign("t2", 4)

	var d protocol.Decline
	dec := h.waitFor(broker.VerbDecline, 1)
	dec.decode(t, &d)
	require.Equal(t, protocol.Decline{TaskID: "t2", Generation: 4, Reason: "busy",
		Holding: []protocol.Holding{{TaskID: "t1", Generation: 1, Status: "working"}}}, d)
	require.Equal(t, "req-t2", dec.RequestID)
	h.waitFor(broker.VerbProgress, 2) // later than the pushes: they were handled
	require.Len(t, h.requests(broker.VerbAccept), 1)
	require.Len(t, h.requests(broker.VerbDecline), 1)
}

// TestPushWhileReportingIsTaken is the hub pushing the next task as soon
// as it stored a completion, before its answer reaches the sidecar: the
// finished task takes no room any more, so the push is accepted, not
// declined as busy. A restart then reports the new task in hello.
func TestPushWhileReportingIsTaken(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	h.answer(broker.VerbComplete, func(r hubReq) (int, any) {
		var c protocol.Complete
		r.decode(t, &c)
		if c.TaskID == "t1" {
			return 0, nil // stored, but the answer is slow: not sent yet
		}
		return 200, map[string]string{"status": "completed"}
	})
	dir := t.TempDir()
	s, _ := start(t, h.config("sleep 0.2; echo done", dir))
	h.hello(1)
	h.assign("t1", 1)
	h.waitFor(broker.VerbComplete, 1)
	h.answer(broker.VerbAccept, func(hubReq) (int, any) { return 0, nil }) // t2 stays unaccepted
	h.assign("t2", 1)
	var acc protocol.TaskRef
	h.waitFor(broker.VerbAccept, 2).decode(t, &acc)
	require.Equal(t, "t2", acc.TaskID)
	require.Empty(t, h.requests(broker.VerbDecline))

	s.Stop()
	start(t, h.config("sleep 30", dir))
	hello := h.hello(2)
	require.Contains(t, hello.Held, protocol.Holding{TaskID: "t2", Generation: 1, Status: "assigned"})
}

// TestProgressFollowsTheHubsStuckThreshold: configured to report progress
// every hour, the sidecar reports at the interval the hello answer asks
// for (a third of the hub's stuck threshold), which is shorter.
func TestProgressFollowsTheHubsStuckThreshold(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	h.answer(broker.VerbHello, func(r hubReq) (int, any) {
		reply := h.defaultHello(r)
		reply.StuckThresholdMS, reply.ProgressIntervalMS = 90, 30
		return 200, reply
	})
	cfg := h.config("sleep 30", t.TempDir())
	cfg.ProgressInterval = time.Hour
	_, logs := start(t, cfg)
	h.hello(1)
	h.assign("t1", 1)
	h.waitFor(broker.VerbProgress, 3)
	require.Contains(t, logs.String(), "progress interval shortened to a third of the hub's stuck threshold")
}

func TestProgressWhileRunning(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	start(t, h.config("sleep 30", t.TempDir()))
	h.hello(1)
	h.assign("t1", 3)
	p := h.waitFor(broker.VerbProgress, 3)
	var pr protocol.Progress
	p.decode(t, &pr)
	require.Equal(t, protocol.Progress{TaskID: "t1", Generation: 3}, pr)
	require.Equal(t, "req-t1", p.RequestID)
}

// longCmd starts a background grandchild, records its pid, and waits: the
// whole process group must die, not just sh.
func longCmd(dir string) string {
	return fmt.Sprintf(`sleep 300 & echo $! > %s/pid; wait`, shellQuote(dir))
}

func TestAbortPushKillsProcessGroup(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	dir, state := t.TempDir(), t.TempDir()
	start(t, h.config(longCmd(dir), state))
	h.hello(1)
	h.assign("t1", 2)
	pid := readPID(t, filepath.Join(dir, "pid"))
	h.waitFor(broker.VerbProgress, 1)

	h.push(broker.PushAbort, protocol.Abort{TaskID: "t1", Generation: 1, Reason: "old generation"})
	h.waitFor(broker.VerbProgress, 3)
	require.False(t, processGone(pid), "an abort of another generation is ignored")

	h.push(broker.PushAbort, protocol.Abort{TaskID: "t1", Generation: 2, Reason: "cancelled"})
	require.Eventually(t, func() bool { return processGone(pid) }, wait, tick, "process group not killed")
	requireStateCleared(t, state)
	require.Empty(t, h.requests(broker.VerbComplete))
	require.Empty(t, h.requests(broker.VerbFail))
}

func TestStaleProgressKillsWork(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	dir, state := t.TempDir(), t.TempDir()
	h.answer(broker.VerbProgress, func(hubReq) (int, any) {
		return 409, protocol.Error{Error: "stale_generation"}
	})
	start(t, h.config(longCmd(dir), state))
	h.hello(1)
	h.assign("t1", 2)
	pid := readPID(t, filepath.Join(dir, "pid"))

	require.Eventually(t, func() bool { return processGone(pid) }, wait, tick, "process group not killed")
	requireStateCleared(t, state)
	require.Len(t, h.requests(broker.VerbProgress), 1)
	require.Empty(t, h.requests(broker.VerbComplete))
	require.Empty(t, h.requests(broker.VerbFail))
}

func TestTaskTimeoutFails(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	dir := t.TempDir()
	cfg := h.config(longCmd(dir), t.TempDir())
	cfg.TaskTimeout = 300 * time.Millisecond
	start(t, cfg)
	h.hello(1)
	h.assign("t1", 1)
	pid := readPID(t, filepath.Join(dir, "pid"))

	var f protocol.Fail
	h.waitFor(broker.VerbFail, 1).decode(t, &f)
	require.Equal(t, "timeout after 300ms", f.Error)
	require.Eventually(t, func() bool { return processGone(pid) }, wait, tick)
}

func TestAcceptRefusedDropsTask(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	dir, state := t.TempDir(), t.TempDir()
	h.answer(broker.VerbAccept, func(hubReq) (int, any) {
		return 409, protocol.Error{Error: "stale_generation"}
	})
	start(t, h.config(fmt.Sprintf("touch %s/ran", shellQuote(dir)), state))
	h.hello(1)
	h.assign("t1", 1)
	h.waitFor(broker.VerbAccept, 1)
	requireStateCleared(t, state)

	// The slot is free again: the next assignment is accepted and run.
	h.answer(broker.VerbAccept, nil)
	h.assign("t2", 1)
	var c protocol.Complete
	h.waitFor(broker.VerbComplete, 1).decode(t, &c)
	require.Equal(t, "t2", c.TaskID)
	require.Len(t, h.requests(broker.VerbAccept), 2)
}

func TestReportRetriedUntilDefiniteAnswer(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	state := t.TempDir()
	calls := 0
	h.answer(broker.VerbComplete, func(hubReq) (int, any) {
		calls++ // the hub's handler runs on one goroutine
		switch calls {
		case 1:
			return 0, nil // no reply: a timeout
		case 2:
			return 503, protocol.Error{Error: "unavailable"}
		}
		return 200, map[string]string{"status": "completed"}
	})
	cfg := h.config("echo done", state)
	cfg.RequestTimeout = 200 * time.Millisecond
	start(t, cfg)
	h.hello(1)
	h.assign("t1", 1)

	third := h.waitFor(broker.VerbComplete, 3)
	require.Equal(t, "req-t1", third.RequestID)
	requireStateCleared(t, state)
	for _, r := range h.requests(broker.VerbComplete) {
		require.Equal(t, h.requests(broker.VerbComplete)[0].Data, r.Data)
	}
}

func TestReportGivesUpOnRefusal(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	state := t.TempDir()
	h.answer(broker.VerbFail, func(hubReq) (int, any) {
		return 409, protocol.Error{Error: "invalid_state"}
	})
	start(t, h.config("exit 1", state))
	h.hello(1)
	h.assign("t1", 1)
	h.waitFor(broker.VerbFail, 1)
	requireStateCleared(t, state)
	h.waitFor(broker.VerbHeartbeat, 3)
	require.Len(t, h.requests(broker.VerbFail), 1)
}

func TestUnknownSessionOnProgressSaysHelloAndKeepsWorking(t *testing.T) {
	t.Parallel()
	h := newTestHub(t)
	dir, state := t.TempDir(), t.TempDir()
	calls := 0
	h.answer(broker.VerbProgress, func(hubReq) (int, any) {
		calls++
		if calls == 1 {
			return 409, protocol.Error{Error: "unknown_session"}
		}
		return 200, map[string]string{}
	})
	start(t, h.config(longCmd(dir), state))
	h.hello(1)
	h.assign("t1", 1)
	pid := readPID(t, filepath.Join(dir, "pid"))

	hello := h.hello(2)
	require.Equal(t, &protocol.Holding{TaskID: "t1", Generation: 1, Status: statusWorking}, firstHeld(hello.Held))
	h.waitFor(broker.VerbProgress, 3)
	require.False(t, processGone(pid))
	require.Len(t, stateOf(t, state), 1)
}
