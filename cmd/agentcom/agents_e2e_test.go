package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/logsink/logtest"
)

// fastAgents are hub timings short enough for tests.
var fastAgents = []string{
	"AGENTCOM_AGENTS_ACCEPTANCE_TIMEOUT=1s", "AGENTCOM_AGENTS_STUCK_THRESHOLD=1500ms",
	"AGENTCOM_AGENTS_HEARTBEAT_INTERVAL=200ms", "AGENTCOM_AGENTS_REAP_AFTER=3s",
	"AGENTCOM_AGENTS_RECONNECT_GRACE=1s", "AGENTCOM_AGENTS_SWEEP_INTERVAL=100ms",
}

// freeAddr returns a loopback address with a port nobody listens on now,
// so a restarted hub can come back where its sidecars look for it.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// sidecarProc is a real `agentcom sidecar` process.
type sidecarProc struct {
	id   string
	cmd  *exec.Cmd
	done chan struct{}
	out  lockedLines
}

// startSidecar creates the agent's token with the CLI and starts its
// sidecar running command for every task. Every stdout line must be JSON.
func startSidecar(t *testing.T, h *hubProc, id, command string, caps []string, extra ...string) *sidecarProc {
	t.Helper()
	out, errOut, code := cli(t, h, "token", "create", id)
	require.Equal(t, 0, code, errOut)
	return startSidecarWithToken(t, h.natsURL, id, strings.TrimSpace(out), command, caps, extra...)
}

func startSidecarWithToken(t *testing.T, hubURL, id, token, command string, caps []string, extra ...string) *sidecarProc {
	t.Helper()
	args := []string{"sidecar", "--agent-id", id, "--token", token, "--hub", hubURL, "--exec", command,
		"--state-dir", filepath.Join(t.TempDir(), "state"), "--progress-interval", "200ms"}
	for _, c := range caps {
		args = append(args, "--capability", c)
	}
	return startSidecarArgs(t, id, append(args, extra...)...)
}

// startSidecarArgs runs the binary with args; every stdout line must be
// JSON and is kept.
func startSidecarArgs(t *testing.T, id string, args ...string) *sidecarProc {
	t.Helper()
	return startSidecarCmd(t, id, exec.Command(bin, args...))
}

// startSidecarCmd starts cmd, a sidecar (or a shell that execs one).
func startSidecarCmd(t *testing.T, id string, cmd *exec.Cmd) *sidecarProc {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	s := &sidecarProc{id: id, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		readJSONLines(t, "sidecar "+id, stdout, &s.out)
		_ = cmd.Wait()
	}()
	t.Cleanup(s.kill)
	return s
}

func (s *sidecarProc) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// stdout is everything the sidecar printed so far.
func (s *sidecarProc) stdout() string { return s.out.text() }

// lockedLines collects lines from a reader goroutine.
type lockedLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *lockedLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *lockedLines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func readJSONLines(t *testing.T, who string, r io.Reader, into *lockedLines) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Errorf("%s stdout line is not JSON: %q", who, sc.Text())
		} else if err := logtest.Check(sc.Bytes()); err != nil {
			t.Errorf("%s stdout line does not match the log schema: %v: %s", who, err, sc.Text())
		}
		into.add(sc.Text())
	}
}

// fullTask is a task as GET /api/tasks/{id} returns it.
type fullTask struct {
	ID                 string          `json:"id"`
	Status             string          `json:"status"`
	AssignedTo         string          `json:"assigned_to"`
	NeededCapabilities []string        `json:"needed_capabilities"`
	Result             json.RawMessage `json:"result"`
	LastError          string          `json:"last_error"`
	RetryCount         int             `json:"retry_count"`
	ReclaimCount       int             `json:"reclaim_count"`
	Generation         uint64          `json:"generation"`
	History            []struct {
		Event  string    `json:"event"`
		At     time.Time `json:"at"`
		Detail string    `json:"detail"`
	} `json:"history"`
}

func (h *hubProc) task(t *testing.T, id string) fullTask {
	t.Helper()
	resp, err := http.Get(h.httpURL + "/api/tasks/" + id)
	require.NoError(t, err)
	defer resp.Body.Close()
	var task fullTask
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&task))
	return task
}

func (h *hubProc) waitTask(t *testing.T, id, status string, within time.Duration) fullTask {
	t.Helper()
	var task fullTask
	require.Eventually(t, func() bool {
		task = h.task(t, id)
		return task.Status == status
	}, within, 20*time.Millisecond, "task %s never became %s", id, status)
	return task
}

func (h *hubProc) submitTask(t *testing.T, body string) string {
	t.Helper()
	code, out, err := h.post("/api/tasks", body)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code, out)
	return out["task_id"].(string)
}

// runLog is a file every task run appends "start|end <task> <agent> <unix ns>" to.
type runLog string

func (l runLog) command(agent, work string) string {
	return fmt.Sprintf(`echo "start $AGENTCOM_TASK_ID %[1]s $(date +%%s%%N)" >> %[2]s; %[3]s; rc=$?; `+
		`echo "end $AGENTCOM_TASK_ID %[1]s $(date +%%s%%N)" >> %[2]s; echo "done by %[1]s"; exit $rc`, agent, string(l), work)
}

type run struct {
	agent      string
	start, end int64
}

// runs reads the log: each task's runs, and whether any ended.
func (l runLog) runs(t *testing.T) map[string][]run {
	t.Helper()
	b, err := os.ReadFile(string(l))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	out := map[string][]run{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var kind, task, agent string
		var at int64
		_, err := fmt.Sscanf(line, "%s %s %s %d", &kind, &task, &agent, &at)
		require.NoError(t, err, line)
		rs := out[task]
		if kind == "start" {
			out[task] = append(rs, run{agent: agent, start: at})
			continue
		}
		for i := len(rs) - 1; i >= 0; i-- {
			if rs[i].agent == agent && rs[i].end == 0 {
				rs[i].end = at
				break
			}
		}
	}
	return out
}

// requireNoOverlap checks that no task ran on two agents at once.
func requireNoOverlap(t *testing.T, runs map[string][]run) {
	t.Helper()
	for task, rs := range runs {
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				a, b := rs[i], rs[j]
				aEnd, bEnd := a.end, b.end
				if aEnd == 0 {
					aEnd = 1 << 62
				}
				if bEnd == 0 {
					bEnd = 1 << 62
				}
				require.False(t, a.start < bEnd && b.start < aEnd, "task %s ran twice at once: %+v %+v", task, a, b)
			}
		}
	}
}
