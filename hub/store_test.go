package hub

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/storeops"
)

// TestCompactionRemovesOnlyOldFinishedTasksAndReplaysTheSame: finished
// tasks older than the retention are summarised; queued, running, dead
// and recent ones keep their events; a replay after it equals the live
// state.
func TestCompactionRemovesOnlyOldFinishedTasksAndReplaysTheSame(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")      // the scheduler is paused: the workload assigns by hand
	workload(t, h.Hub, 4, 10) // queued, cancelled, completed, failed (requeued), reclaimed tasks
	ctx := context.Background()
	old := map[string]domain.Status{}
	for _, task := range h.Tasks().State().Tasks {
		old[task.ID] = task.Status
	}
	// Compact as if the retention had just passed since now: work after
	// this cut-off stays untouched even when finished.
	mark := time.Now()
	recent := h.submit(t, `{"description":"recent"}`)
	_, err := h.svc.Execute(ctx, domain.CancelTask{ID: recent})
	require.NoError(t, err)

	liveBefore := h.Tasks().State()
	eventsBefore := map[string]int{}
	for _, task := range liveBefore.Tasks {
		eventsBefore[task.ID] = countEvents(t, h, task.ID)
	}
	res, err := h.ops.CompactBefore(ctx, mark)
	require.NoError(t, err)
	require.Positive(t, res.Compacted)
	require.Less(t, res.EventsAfter, res.EventsBefore)

	for _, task := range h.Tasks().State().Tasks {
		subjectEvents := countEvents(t, h, task.ID)
		finishedOld := (old[task.ID] == domain.StatusCompleted || old[task.ID] == domain.StatusCancelled)
		if finishedOld {
			require.True(t, task.Compacted, task.ID)
			require.Equal(t, 1, subjectEvents, "%s keeps only its summary", task.ID)
		} else {
			require.False(t, task.Compacted, "%s (%s) must not be compacted", task.ID, task.Status)
			require.Equal(t, eventsBefore[task.ID], subjectEvents, "%s keeps its events", task.ID)
		}
	}
	// Apart from the flag, the live state is what it was; a replay agrees.
	liveAfter := h.Tasks().State()
	require.Equal(t, stripCompacted(liveBefore), stripCompacted(liveAfter))
	replayed, err := storeops.ReplayStore(ctx, h.Store(), storeops.ReplayOpts{})
	require.NoError(t, err)
	require.Equal(t, liveAfter, replayed.State)
	again, err := h.ops.CompactBefore(ctx, mark)
	require.NoError(t, err)
	require.Zero(t, again.Compacted, "compaction is idempotent")
}

// stripCompacted drops what compaction changes: the flag and the sequence.
func stripCompacted(s projections.State) projections.State {
	out := s
	out.LastSeq, out.Tasks = 0, nil
	for _, t := range s.Tasks {
		c := *t
		c.Compacted = false
		out.Tasks = append(out.Tasks, &c)
	}
	return out
}

func countEvents(t *testing.T, h *testHub, taskID string) int {
	t.Helper()
	n := 0
	require.NoError(t, h.Store().Read(context.Background(), broker.ReadOpts{Subject: broker.TaskEvents(taskID)},
		func(domain.Envelope) error { n++; return nil }))
	return n
}

func TestStoreHealthReportsStreamsAndOperations(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelInfo, func(*config.Hub) {})
	h.submit(t, `{"description":"x"}`)
	code, out := h.do(t, http.MethodGet, "/api/admin/store-health", h.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "healthy", out["status"], out)
	streams := out["streams"].([]any)
	require.NotEmpty(t, streams)
	events := streams[0].(map[string]any)
	require.Equal(t, "AGENTCOM_EVENTS", events["name"])
	require.EqualValues(t, 1, events["messages"])
	code, _ = h.do(t, http.MethodGet, "/api/admin/store-health", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, out = h.do(t, http.MethodPost, "/api/admin/compact", h.token, "")
	require.Equal(t, http.StatusOK, code, out)
	_, out = h.do(t, http.MethodGet, "/api/admin/store-health", h.token, "")
	require.Equal(t, true, out["last_compaction"].(map[string]any)["ok"])
}

// TestTruncatedStoreIsNeverHealthy: a corrupted last block of the event
// stream is detected at start and reported unhealthy.
func TestTruncatedStoreIsNeverHealthy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubCfg(t, dir, logsink.LevelInfo, func(*config.Hub) {})
	for range 20 {
		h.submit(t, `{"description":"data that will be damaged"}`)
	}
	h.Stop()
	blocks, err := filepath.Glob(filepath.Join(dir, "jetstream", "jetstream", "*", "streams", "AGENTCOM_EVENTS", "msgs", "*.blk"))
	require.NoError(t, err)
	require.NotEmpty(t, blocks)
	last := blocks[len(blocks)-1]
	info, err := os.Stat(last)
	require.NoError(t, err)
	damage(t, last, info.Size())

	again := startHubCfg(t, dir, logsink.LevelInfo, func(*config.Hub) {})
	code, out := again.do(t, http.MethodGet, "/api/admin/store-health", again.token, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "unhealthy", out["status"], out)
	require.NotEmpty(t, out["loss_at_start"])
}

// damage overwrites the last third of a block file with garbage.
func damage(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	junk := make([]byte, size/3)
	for i := range junk {
		junk[i] = 0xAB
	}
	_, err = f.WriteAt(junk, size-int64(len(junk)))
	require.NoError(t, err)
}

// TestRunningHubSeesEventsRemovedBehindItsBack: the periodic check finds
// a purge of the event stream while the hub runs; the loss is sticky.
func TestRunningHubSeesEventsRemovedBehindItsBack(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	id := h.submit(t, `{"description":"purged"}`)
	h.submit(t, `{"description":"kept"}`)
	h.ops.SaveMark(context.Background())
	h.ops.CheckLoss(context.Background())
	require.False(t, h.ops.LossFound(), "nothing was removed yet")

	js, err := jetstream.New(h.nc) // the hub's own connection: no client may purge
	require.NoError(t, err)
	stream, err := js.Stream(context.Background(), broker.EventsStream)
	require.NoError(t, err)
	require.NoError(t, stream.Purge(context.Background(), jetstream.WithPurgeSubject(broker.TaskEvents(id))))
	h.ops.CheckLoss(context.Background())
	require.True(t, h.ops.LossFound())
	code, out := h.do(t, http.MethodPost, "/api/tasks", h.token, `{"description":"refused"}`)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "store_loss", out["error"])
	code, _ = h.do(t, http.MethodGet, "/health", "", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
}
