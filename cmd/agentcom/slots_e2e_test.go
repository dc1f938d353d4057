package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/bench"
)

// TestSidecarWithTwentySlotsSurvivesKillNine: one sidecar process runs 20
// commands at once; it is killed with SIGKILL while they run, and started
// again on the same state directory. Every task completes, and no task's
// command ever runs twice at once: each run holds a lock on its task's
// file for as long as it runs, so a second run while one is alive
// (an orphan the restart failed to end) cannot take it and says so.
func TestSidecarWithTwentySlotsSurvivesKillNine(t *testing.T) {
	t.Parallel()
	const n, slots = 60, 20
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	locks, runs := t.TempDir(), filepath.Join(t.TempDir(), "runs.log")
	work := fmt.Sprintf(`flock -n %[1]s/$AGENTCOM_TASK_ID -c 'echo "run $AGENTCOM_TASK_ID" >> %[2]s; sleep 0.$(( $$ %% 7 + 3 ))' `+
		`|| { echo "overlap $AGENTCOM_TASK_ID" >> %[2]s; exit 1; }; echo done`, locks, runs)
	out, errOut, code := cli(t, h, "token", "create", "wide")
	require.Equal(t, 0, code, errOut)
	token, state := strings.TrimSpace(out), filepath.Join(t.TempDir(), "state")
	args := []string{"sidecar", "--agent-id", "wide", "--token", token, "--hub", h.natsURL, "--exec", work,
		"--state-dir", state, "--progress-interval", "200ms", "--max-tasks", fmt.Sprint(slots)}
	for i := range n {
		h.submitTask(t, fmt.Sprintf(`{"description":"slot work %d","max_retries":0}`, i))
	}
	first := startSidecarArgs(t, "wide", args...)
	require.Eventually(t, func() bool { return heldBy(h, "wide") == slots && runningRuns(t, runs) >= slots },
		30*time.Second, 10*time.Millisecond, "the sidecar never held and ran %d tasks at once", slots)
	first.kill()
	second := startSidecarArgs(t, "wide", args...)
	if !assert.Eventually(t, func() bool { return liveStats(t, h)["completed"] == n }, 2*time.Minute, 50*time.Millisecond) {
		t.Fatalf("not every task completed after the restart: %v\nsidecar:\n%s", liveStats(t, h), second.stdout())
	}
	b, err := os.ReadFile(runs)
	require.NoError(t, err)
	require.NotContains(t, string(b), "overlap", "a task's command ran twice at once")
}

// heldBy is how many tasks the hub counts an agent holding, -1 if unknown.
func heldBy(h *hubProc, agent string) int {
	code, out, err := h.get("/api/agents/" + agent + "/state")
	if err != nil || code != 200 {
		return -1
	}
	tasks, _ := out["tasks"].([]any)
	return len(tasks)
}

// runningRuns is how many runs the log holds so far.
func runningRuns(t *testing.T, runs string) int {
	t.Helper()
	b, err := os.ReadFile(runs)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	return strings.Count(string(b), "run ")
}

// TestProcessMemory reads the real processes' resident sets: an idle hub,
// and a sidecar with 100 slots while it runs 100 commands at once. The
// figures are logged; the bounds, looser than the targets (an idle hub
// and that sidecar each within 30 MiB, met with 1-3 MiB to spare), catch
// a regression without failing on a noisy machine.
func TestProcessMemory(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	idle := waitSettledRSS(t, h.cmd.Process.Pid)
	t.Logf("idle hub: RSS %.1f MiB", idle)
	require.Less(t, idle, 40.0, "idle hub RSS in MiB")

	const slots = 100
	s := startSidecar(t, h, "hundred", "sleep 60; echo done", nil, "--max-tasks", fmt.Sprint(slots))
	defer s.terminate(t) // a stopping sidecar ends its commands: none outlives the test
	for i := range slots {
		h.submitTask(t, fmt.Sprintf(`{"description":"hold %d"}`, i))
	}
	require.Eventually(t, func() bool { return heldBy(h, "hundred") == slots && liveStats(t, h)["working"] == slots },
		time.Minute, 20*time.Millisecond, "the sidecar never ran %d tasks at once", slots)
	m := processMemory(t, s.cmd.Process.Pid)
	t.Logf("sidecar with %d slots at work: peak RSS %.1f MiB, %d threads", slots, m.HWMMB, m.Threads)
	require.Less(t, m.HWMMB, 40.0, "sidecar peak RSS in MiB")
}

// waitSettledRSS waits until a process's RSS stops growing (two reads
// 200 ms apart within 1%) and returns it, in MiB.
func waitSettledRSS(t *testing.T, pid int) float64 {
	t.Helper()
	last := processMemory(t, pid).RSSMB
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		now := processMemory(t, pid).RSSMB
		if now <= last*1.01 {
			return now
		}
		last = now
	}
	return last
}

// processMemory reads a process's memory as agentcom bench does.
func processMemory(t *testing.T, pid int) *bench.Memory {
	t.Helper()
	m := bench.ProcessMemory(pid)
	require.NotNil(t, m, "no /proc/%d/status", pid)
	return m
}
