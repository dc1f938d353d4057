package hub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/storeops"
	"github.com/agentcom/agentcom/writer"
)

// workload runs a mix of every command from many goroutines at once, so
// that groups mix submits with commands on the same tasks.
func workload(t *testing.T, h *Hub, workers, perWorker int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			agent := fmt.Sprintf("agent-%d", w)
			connectAgent(t, h, agent)
			for i := range perWorker {
				id := writer.NewTaskID()
				_, err := h.svc.Execute(ctx, domain.SubmitTask{ID: id, Description: fmt.Sprintf("w%d-%d", w, i),
					Priority: domain.Priority(rng.IntN(4)), Metadata: []byte(`{"n":1}`)})
				require.NoError(t, err)
				runLifecycle(t, h, id, agent, rng.IntN(5))
			}
		})
	}
	wg.Wait()
}

// lifecycle takes a task down one of several paths.
func runLifecycle(t *testing.T, h *Hub, id, agent string, path int) {
	ctx := context.Background()
	switch path {
	case 0: // stays queued
	case 1:
		_, err := h.svc.Execute(ctx, domain.CancelTask{ID: id, By: "admin", Reason: "r"})
		require.NoError(t, err)
	default:
		task, err := h.svc.Execute(ctx, domain.AssignTask{ID: id, AgentID: agent})
		require.NoError(t, err)
		_, err = h.svc.Execute(ctx, domain.AcceptTask{ID: id, AgentID: agent, Generation: task.Generation})
		require.NoError(t, err)
		var cmd domain.Command = domain.CompleteTask{ID: id, AgentID: agent, Generation: task.Generation, Result: []byte(`"ok"`)}
		if path == 3 {
			cmd = domain.FailTask{ID: id, AgentID: agent, Generation: task.Generation, Error: "boom"}
		} else if path == 4 {
			cmd = domain.ReclaimTask{ID: id, Reason: "agent_disconnect"}
		}
		_, err = h.svc.Execute(ctx, cmd)
		require.NoError(t, err)
	}
}

func TestLiveStateEqualsReplay(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	workload(t, h.Hub, 16, 20)
	// Read the live views at one sequence and replay up to that same
	// sequence: events that land meanwhile must not make a difference.
	snap, seq, err := h.views.SnapshotSeq()
	require.NoError(t, err)
	live, err := projections.ViewsFromSnapshot(snap)
	require.NoError(t, err)
	require.Len(t, live.Tasks.State().Tasks, 16*20)
	replayed, err := storeops.ReplayStore(context.Background(), h.Store(), storeops.ReplayOpts{UntilSeq: seq})
	require.NoError(t, err)
	require.Equal(t, live.Tasks.State(), replayed.State)
	require.Equal(t, live.Tasks.Stats(), replayed.Stats)
	require.Equal(t, live.Agents.List(), replayed.Agents)
	for _, a := range replayed.Agents {
		require.Equal(t, domain.StateIdle, a.State, a.ID)
		require.Zero(t, a.Invalid, a.ID)
	}
}

func TestConcurrentSubmitsShareGroupCommits(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	const n = 400
	ctx := context.Background()
	var wg sync.WaitGroup
	seen := sync.Map{}
	for i := range n {
		wg.Go(func() {
			id := writer.NewTaskID()
			task, err := h.svc.Execute(ctx, domain.SubmitTask{ID: id, Description: fmt.Sprint(i)})
			require.NoError(t, err)
			require.Equal(t, domain.StatusQueued, task.Status)
			_, dup := seen.LoadOrStore(id, true)
			require.False(t, dup)
		})
	}
	wg.Wait()
	stats := h.svc.Stats()
	require.Equal(t, uint64(n), stats.Commands)
	require.Less(t, stats.Commits, uint64(n), "concurrent commands were grouped")
	last, err := h.Store().LastSeq(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(n), last)
}

func TestRejectedCommandInAGroupDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	ctx := context.Background()
	id := writer.NewTaskID()
	_, err := h.svc.Execute(ctx, domain.SubmitTask{ID: id, Description: "x"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			// One cancel wins; the rest find the task cancelled. Submits ride along.
			_, errs[i] = h.svc.Execute(ctx, domain.CancelTask{ID: id})
			_, err := h.svc.Execute(ctx, domain.SubmitTask{ID: writer.NewTaskID(), Description: "y"})
			require.NoError(t, err)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			require.ErrorIs(t, err, domain.ErrInvalidState)
		}
	}
	require.Equal(t, 1, ok)
	require.Equal(t, 21, h.Tasks().Stats().Total)
}

func TestRestartKeepsEveryAcknowledgedTask(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHub(t, dir)
	workload(t, h.Hub, 4, 10)
	before := h.Tasks().State()
	h.Stop()
	again := startHub(t, dir)
	require.Equal(t, before, again.Tasks().State())
}

func TestStoppedServiceRefusesCommands(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	h.svc.Stop()
	_, err := h.svc.Execute(context.Background(), domain.SubmitTask{ID: writer.NewTaskID(), Description: "late"})
	require.ErrorIs(t, err, writer.ErrStopped)
}
