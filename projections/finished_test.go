package projections_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/projections"
)

// runToEnd submits, assigns, accepts and completes a task.
func (f *feed) runToEnd(id string, p domain.Priority) {
	f.t.Helper()
	f.submit(id, p)
	f.assign(id, "a1")
	f.accept(id)
	f.complete(id)
}

// loaderOf reads tasks back from the feed's own state, as the hub reads
// them from the stream.
func loaderOf(f *feed, calls *int) projections.Loader {
	return func(id string) (*domain.Task, uint64, bool) {
		*calls++
		t, ok := f.state[id]
		return t, 0, ok
	}
}

func TestFinishedTasksLeaveMemoryButStayCounted(t *testing.T) {
	f := newFeed(t)
	calls := 0
	f.p.SetKeepFinished(2, loaderOf(f, &calls))
	for i := range 5 {
		f.runToEnd(fmt.Sprintf("t%d", i), domain.Priority(i%2))
	}
	f.submit("open", domain.PriorityLow)

	require.ElementsMatch(t, []string{"t3", "t4"}, ids(f.p.List(projections.Filter{Status: domain.StatusCompleted})))
	st := f.p.Stats()
	require.Equal(t, 6, st.Total)
	require.Equal(t, 5, st.ByStatus["completed"])
	require.Equal(t, 1, st.Queued)
	require.Equal(t, 3, st.ByPriority[domain.PriorityUrgent.String()]) // t0, t2, t4
	require.Equal(t, 2, st.ByPriority[domain.PriorityHigh.String()])

	_, _, ok := f.p.Peek("t0")
	require.False(t, ok, "t0 left memory")
	got, _, ok := f.p.Get("t0")
	require.True(t, ok)
	require.Equal(t, domain.StatusCompleted, got.Status)
	require.Equal(t, 1, calls, "read back through the loader")

	_, _, ok = f.p.Get("t4")
	require.True(t, ok)
	_, _, ok = f.p.Get("open")
	require.True(t, ok)
	require.Equal(t, 1, calls, "tasks in memory never reach the loader")
}

func TestNothingLeavesMemoryWithoutALimit(t *testing.T) {
	f := newFeed(t)
	for i := range 5 {
		f.runToEnd(fmt.Sprintf("t%d", i), domain.PriorityNormal)
	}
	require.Len(t, f.p.List(projections.Filter{Status: domain.StatusCompleted}), 5)
	_, _, ok := f.p.Get("nope")
	require.False(t, ok)
}

func TestCompactionOfATaskThatLeftMemoryIsCountedOnce(t *testing.T) {
	f := newFeed(t)
	f.p.SetKeepFinished(1, loaderOf(f, new(int)))
	f.p.Live()
	f.runToEnd("t0", domain.PriorityNormal)
	f.runToEnd("t1", domain.PriorityNormal) // t0 leaves
	snap := snapshotOf(t, f)
	f.do(domain.CompactTask{ID: "t0", Before: f.now.Add(1e9), Order: 1})
	want := f.p.Stats()
	require.Equal(t, 2, want.Total, "live: decided on a task that left, not counted again")
	require.Equal(t, 2, want.ByStatus["completed"])
	_, _, ok := f.p.Peek("t0")
	require.False(t, ok, "it stays out")

	// The rollup removed t0's earlier events: a replay from the start meets
	// the compaction first and counts it; one from the snapshot taken
	// before it counted t0 already.
	var rolled []domain.Envelope
	for _, env := range f.log {
		if env.Aggregate != "t0" || env.Type == domain.TypeTaskCompacted {
			rolled = append(rolled, env)
		}
	}
	fresh := projections.NewTasks()
	fresh.SetKeepFinished(1, nil)
	require.NoError(t, fresh.Apply(rolled...))
	require.Equal(t, want, fresh.Stats(), "replay from the start")

	from, err := projections.ViewsFromSnapshot(snap)
	require.NoError(t, err)
	from.Tasks.SetKeepFinished(1, nil)
	require.NoError(t, from.Tasks.Apply(f.log[len(f.log)-1]))
	require.Equal(t, want, from.Tasks.Stats(), "replay from the snapshot")
}

// snapshotOf snapshots the feed's projection.
func snapshotOf(t *testing.T, f *feed) []byte {
	t.Helper()
	v := &projections.Views{Tasks: f.p, Agents: projections.NewAgents()}
	require.NoError(t, v.Agents.Apply(f.log...))
	b, err := v.Snapshot()
	require.NoError(t, err)
	return b
}

func TestSnapshotKeepsWhatLeftMemory(t *testing.T) {
	f := newFeed(t)
	f.p.SetKeepFinished(2, nil)
	for i := range 6 {
		f.runToEnd(fmt.Sprintf("t%d", i), domain.Priority(i%4))
	}
	f.submit("open", domain.PriorityLow)
	b := snapshotOf(t, f)

	got, err := projections.ViewsFromSnapshot(b)
	require.NoError(t, err)
	got.Tasks.SetKeepFinished(2, nil)
	require.Equal(t, f.p.Stats(), got.Tasks.Stats())
	require.Equal(t, ids(f.p.List(projections.Filter{Status: domain.StatusCompleted})),
		ids(got.Tasks.List(projections.Filter{Status: domain.StatusCompleted})))

	// Both go on alike: the next finished task pushes out the same one.
	f.runToEnd("t6", domain.PriorityNormal)
	for _, env := range f.log[len(f.log)-4:] {
		require.NoError(t, got.Tasks.Apply(env))
	}
	require.Equal(t, f.p.Stats(), got.Tasks.Stats())
	require.Equal(t, ids(f.p.List(projections.Filter{Status: domain.StatusCompleted})),
		ids(got.Tasks.List(projections.Filter{Status: domain.StatusCompleted})))
}
