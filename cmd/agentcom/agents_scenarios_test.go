package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var capSets = map[string][]string{"a-go": {"go"}, "a-py": {"python"}, "a-both": {"go", "python"}}

// TestThreeSidecarsCompleteFiftyTasks: a hub and three real sidecar
// processes with different capabilities; fifty tasks of mixed priorities
// and needs all complete, each by an agent that can run it, each once.
func TestThreeSidecarsCompleteFiftyTasks(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	log := runLog(filepath.Join(t.TempDir(), "runs.log"))
	for id, caps := range capSets {
		startSidecar(t, h, id, log.command(id, "sleep 0.02"), caps)
	}
	needs := [][]string{nil, {"go"}, {"python"}, {"go", "python"}, {"python"}}
	var ids []string
	for i := range 50 {
		body, _ := json.Marshal(map[string]any{"description": fmt.Sprint("task ", i),
			"priority": priorities[i%4], "needed_capabilities": needs[i%5]})
		ids = append(ids, h.submitTask(t, string(body)))
	}
	for _, id := range ids {
		task := h.waitTask(t, id, "completed", 60*time.Second)
		var result string
		require.NoError(t, json.Unmarshal(task.Result, &result))
		require.Equal(t, "done by "+task.AssignedTo, result)
		for _, c := range task.NeededCapabilities {
			require.True(t, slices.Contains(capSets[task.AssignedTo], c), "%s ran %s needing %v", task.AssignedTo, id, task.NeededCapabilities)
		}
	}
	runs := log.runs(t)
	for _, id := range ids {
		require.Len(t, runs[id], 1, "task %s ran %d times", id, len(runs[id]))
	}
}

// TestKilledSidecarsTaskCompletesElsewhere: kill -9 a sidecar mid-task;
// the task completes on another agent.
func TestKilledSidecarsTaskCompletesElsewhere(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	victim := startSidecar(t, h, "victim", "sleep 60; echo never", nil)
	id := h.submitTask(t, `{"description":"long job"}`)
	task := h.waitTask(t, id, "working", 20*time.Second)
	require.Equal(t, "victim", task.AssignedTo)
	victim.kill()
	startSidecar(t, h, "heir", "echo finished", nil)
	task = h.waitTask(t, id, "completed", 30*time.Second)
	require.Equal(t, "heir", task.AssignedTo)
	require.Equal(t, 1, task.ReclaimCount)
}

// TestKillHubMidLoad: kill -9 the hub while sidecars work through a load;
// after a restart every acknowledged task completes, and no task ever ran
// on two agents at once.
func TestKillHubMidLoad(t *testing.T) {
	t.Parallel()
	dir, addr := t.TempDir(), freeAddr(t)
	h := startHubProcOn(t, dir, addr, fastAgents)
	log := runLog(filepath.Join(t.TempDir(), "runs.log"))
	for _, id := range []string{"w1", "w2", "w3"} {
		startSidecar(t, h, id, log.command(id, "sleep 0.05"), nil)
	}
	l := startLoad(h, 4)
	require.Eventually(t, func() bool { return l.count() >= 60 }, 30*time.Second, 5*time.Millisecond)
	h.kill()
	acked := l.stop()

	again := startHubProcOn(t, dir, addr, fastAgents)
	for id := range acked {
		again.waitTask(t, id, "completed", 90*time.Second)
	}
	requireNoOverlap(t, log.runs(t))
}

// TestSidecarThatNeverAcceptsIsFlagged: an agent that never accepts is
// flagged unresponsive and its task goes to another agent.
func TestSidecarThatNeverAcceptsIsFlagged(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	out, _, code := cli(t, h, "token", "create", "deaf")
	require.Equal(t, 0, code)
	deaf := dialAgent(t, h.natsURL, "deaf", strings.TrimSpace(out)) // says hello, then ignores every push
	defer deaf.Close()
	id := h.submitTask(t, `{"description":"x"}`)
	require.Eventually(t, func() bool {
		o, _, _ := cli(t, h, "agent", "show", "deaf", "--json")
		return strings.Contains(o, `"unresponsive": true`)
	}, 20*time.Second, 50*time.Millisecond)
	startSidecar(t, h, "keen", "echo ok", nil)
	task := h.waitTask(t, id, "completed", 30*time.Second)
	require.Equal(t, "keen", task.AssignedTo)
	require.GreaterOrEqual(t, task.ReclaimCount, 1)
}

// TestFailingTaskDeadLettersAndRetryBringsItBack: a task that fails three
// times is in the dead letter with its last error; task retry requeues it.
func TestFailingTaskDeadLettersAndRetryBringsItBack(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents)
	startSidecar(t, h, "clumsy", `echo "attempt failed: disk full" >&2; exit 3`, nil)
	id := h.submitTask(t, `{"description":"doomed"}`)
	task := h.waitTask(t, id, "dead_letter", 30*time.Second)
	require.Equal(t, 3, task.RetryCount)
	require.Contains(t, task.LastError, "disk full")
	out, _, code := cli(t, h, "task", "list", "--status", "dead_letter")
	require.Equal(t, 0, code)
	require.Contains(t, out, id)

	_, errOut, code := cli(t, h, "task", "retry", id)
	require.Equal(t, 0, code, errOut)
	require.Eventually(t, func() bool {
		task = h.task(t, id)
		return task.Status != "dead_letter" && task.RetryCount < 3
	}, 10*time.Second, 20*time.Millisecond)
}

// TestLongTaskWithHeartbeatsIsNotReclaimed: a command that runs twice the
// stuck threshold completes without a reclaim, kept alive by progress.
func TestLongTaskWithHeartbeatsIsNotReclaimed(t *testing.T) {
	t.Parallel()
	h := startHubProcOn(t, t.TempDir(), "127.0.0.1:0", fastAgents) // stuck threshold 1.5s
	startSidecar(t, h, "patient", "sleep 4; echo done", nil)
	id := h.submitTask(t, `{"description":"slow"}`)
	task := h.waitTask(t, id, "completed", 30*time.Second)
	require.Zero(t, task.ReclaimCount)
	require.Equal(t, uint64(1), task.Generation)
}
