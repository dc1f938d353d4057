package hub

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/storeops"
	"github.com/agentcom/agentcom/writer"
)

// startHubKeeping runs a paused hub that keeps keep finished tasks in memory.
func startHubKeeping(t *testing.T, dir string, keep int) *testHub {
	t.Helper()
	return startHubOpts(t, dir, logsink.LevelInfo, hubOpts{now: time.Now, paused: true},
		func(cfg *config.Hub) { cfg.Store.KeepFinished = keep })
}

func TestFinishedTasksLeaveMemoryAndAreReadBackFromTheStream(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubKeeping(t, dir, 3)
	connectAgent(t, h.Hub, "a1")
	var ids []string
	for i := range 8 {
		id := writer.NewTaskID()
		_, err := h.svc.Execute(context.Background(), domain.SubmitTask{ID: id, Description: fmt.Sprint(i)})
		require.NoError(t, err)
		runLifecycle(t, h.Hub, id, "a1", 2)
		ids = append(ids, id)
	}
	old := ids[0]
	_, _, inMemory := h.Tasks().Peek(old)
	require.False(t, inMemory, "the oldest finished task left memory")

	code, body := h.do(t, http.MethodGet, "/api/tasks/"+old, h.token, "")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "completed", body["status"])
	require.Equal(t, "ok", body["result"])

	st := h.Tasks().Stats()
	require.Equal(t, 8, st.Total)
	require.Equal(t, 8, st.ByStatus["completed"])

	// Commands on it are decided against its state in the stream.
	_, err := h.svc.Execute(context.Background(), domain.SubmitTask{ID: old, Description: "again"})
	require.ErrorIs(t, err, domain.ErrInvalidState)
	_, err = h.svc.Execute(context.Background(), domain.CancelTask{ID: old, By: "admin", Reason: "r"})
	require.ErrorIs(t, err, domain.ErrInvalidState)

	// A restart (snapshot at stop) keeps the counts and the way back.
	h.Stop()
	again := startHubKeeping(t, dir, 3)
	require.Equal(t, st, again.Tasks().Stats())
	task, _, ok := again.Tasks().Get(old)
	require.True(t, ok)
	require.Equal(t, domain.StatusCompleted, task.Status)
}

func TestCompactionReachesFinishedTasksThatLeftMemory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubKeeping(t, dir, 2)
	connectAgent(t, h.Hub, "a1")
	ctx := context.Background()
	var ids []string
	for range 6 {
		id := writer.NewTaskID()
		_, err := h.svc.Execute(ctx, domain.SubmitTask{ID: id, Description: "x"})
		require.NoError(t, err)
		runLifecycle(t, h.Hub, id, "a1", 2)
		ids = append(ids, id)
	}
	open := h.submit(t, `{"description":"open"}`)
	before := h.Tasks().Stats()

	res, err := h.ops.CompactBefore(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, 6, res.Compacted, "the 2 in memory and the 4 that left")
	require.Zero(t, res.Failed)
	for _, id := range ids {
		require.Equal(t, 1, countEvents(t, h, id), "%s keeps only its summary", id)
		task, _, ok := h.Tasks().Get(id)
		require.True(t, ok)
		require.True(t, task.Compacted)
		require.Equal(t, domain.StatusCompleted, task.Status)
	}
	require.Greater(t, countEvents(t, h, open), 0)
	require.Equal(t, before.Total, h.Tasks().Stats().Total, "nothing counted twice")
	require.Equal(t, before.ByStatus, h.Tasks().Stats().ByStatus)

	again, err := h.ops.CompactBefore(ctx, time.Now())
	require.NoError(t, err)
	require.Zero(t, again.Compacted, "idempotent")

	// A replay from the start meets the summaries first and counts each once.
	h.Stop()
	require.NoError(t, os.Remove(storeops.SnapshotPath(dir)))
	fresh := startHubKeeping(t, dir, 2)
	got := fresh.Tasks().Stats()
	require.Equal(t, before.Total, got.Total)
	require.Equal(t, before.ByStatus, got.ByStatus)
}
