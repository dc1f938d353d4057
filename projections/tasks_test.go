package projections_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/projections"
)

var start = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// feed runs commands through the domain deciders, keeps its own evolved
// state, and applies the resulting envelopes (increasing Seq) to a projection.
type feed struct {
	t     *testing.T
	p     *projections.Tasks
	seq   uint64
	now   time.Time
	state map[string]*domain.Task
	log   []domain.Envelope
}

func newFeed(t *testing.T) *feed {
	t.Helper()
	return &feed{t: t, p: projections.NewTasks(), now: start, state: map[string]*domain.Task{}}
}

// do decides cmd and applies its events; it returns the envelopes.
func (f *feed) do(cmd domain.Command) []domain.Envelope {
	f.t.Helper()
	id := cmd.TaskID()
	cur := f.state[id]
	evs, err := cmd.Decide(cur, f.now)
	require.NoError(f.t, err)
	envs := make([]domain.Envelope, len(evs))
	for i, e := range evs {
		f.seq++
		f.now = f.now.Add(time.Second)
		envs[i] = domain.Envelope{
			ID: fmt.Sprintf("evt-%d", f.seq), Type: e.EventType(), Version: e.SchemaVersion(), Time: f.now,
			Aggregate: id, RequestID: fmt.Sprintf("req-%d", f.seq), Data: e, Seq: f.seq,
		}
		cur = domain.Evolve(cur, envs[i])
	}
	f.state[id] = cur
	require.NoError(f.t, f.p.Apply(envs...))
	f.log = append(f.log, envs...)
	return envs
}

func (f *feed) submit(id string, p domain.Priority) {
	f.t.Helper()
	f.do(domain.SubmitTask{ID: id, Description: "task " + id, Priority: p})
}

func (f *feed) submitWith(id string, p domain.Priority, maxRetries int) {
	f.t.Helper()
	f.do(domain.SubmitTask{ID: id, Description: "task " + id, Priority: p, MaxRetries: &maxRetries})
}

func (f *feed) assign(id, agent string) uint64 {
	f.t.Helper()
	f.do(domain.AssignTask{ID: id, AgentID: agent})
	return f.state[id].Generation
}

func (f *feed) accept(id string) {
	f.t.Helper()
	task := f.state[id]
	f.do(domain.AcceptTask{ID: id, AgentID: task.AssignedTo, Generation: task.Generation})
}

func (f *feed) fail(id string) {
	f.t.Helper()
	task := f.state[id]
	f.do(domain.FailTask{ID: id, AgentID: task.AssignedTo, Generation: task.Generation, Error: "boom"})
}

func (f *feed) complete(id string) {
	f.t.Helper()
	task := f.state[id]
	f.do(domain.CompleteTask{ID: id, AgentID: task.AssignedTo, Generation: task.Generation})
}

func ids(tasks []*domain.Task) []string {
	out := make([]string, 0, len(tasks))
	for _, t := range tasks {
		out = append(out, t.ID)
	}
	return out
}

func prio(p domain.Priority) *domain.Priority { return &p }

func TestQueueOrderPriorityThenSubmission(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		submit []string // id; priority from its first letter
		want   []string
	}{
		{"mixed", []string{"n1", "l1", "u1", "h1", "n2", "u2", "l2", "h2"}, []string{"u1", "u2", "h1", "h2", "n1", "n2", "l1", "l2"}},
		{"reverse priority", []string{"l1", "n1", "h1", "u1"}, []string{"u1", "h1", "n1", "l1"}},
		{"one lane FIFO, ids not sorted", []string{"n9", "n1", "n5"}, []string{"n9", "n1", "n5"}},
		{"empty", nil, []string{}},
	}
	byLetter := map[byte]domain.Priority{'u': domain.PriorityUrgent, 'h': domain.PriorityHigh, 'n': domain.PriorityNormal, 'l': domain.PriorityLow}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFeed(t)
			for _, id := range tc.submit {
				f.submit(id, byLetter[id[0]])
			}
			require.Equal(t, tc.want, ids(f.p.Queue()))
			require.Equal(t, tc.want, ids(f.p.List(projections.Filter{Status: domain.StatusQueued})))
			require.Equal(t, tc.want, ids(f.p.List(projections.Filter{})))
		})
	}
}

func TestRequeuedTaskKeepsItsPlace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		away func(f *feed) // takes b out of the queue
		back func(f *feed) // puts it back
	}{
		{
			"reclaimed from assigned",
			func(f *feed) { f.assign("b", "a1") },
			func(f *feed) { f.do(domain.ReclaimTask{ID: "b", Reason: "accept_timeout"}) },
		},
		{
			"reclaimed from working",
			func(f *feed) { f.assign("b", "a1"); f.accept("b") },
			func(f *feed) { f.do(domain.ReclaimTask{ID: "b", Reason: "no_heartbeat"}) },
		},
		{
			"failed with retries left",
			func(f *feed) { f.assign("b", "a1"); f.accept("b") },
			func(f *feed) { f.fail("b") },
		},
		{
			"retried from dead letter",
			func(f *feed) {
				f.assign("b", "a1")
				f.fail("b") // retry_count 1 < max_retries 2: queued again, in place
				require.Equal(f.t, []string{"h", "a", "b", "c"}, ids(f.p.Queue()))
				f.assign("b", "a2")
				f.fail("b") // retry_count 2: dead letter
				require.Equal(f.t, domain.StatusDeadLetter, f.state["b"].Status)
			},
			func(f *feed) { f.do(domain.RetryTask{ID: "b", By: "ops"}) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFeed(t)
			f.submitWith("a", domain.PriorityNormal, 2)
			f.submitWith("b", domain.PriorityNormal, 2)
			f.submitWith("c", domain.PriorityNormal, 2)
			f.submit("h", domain.PriorityHigh)
			require.Equal(t, []string{"h", "a", "b", "c"}, ids(f.p.Queue()))

			tc.away(f)
			require.Equal(t, []string{"h", "a", "c"}, ids(f.p.Queue()))
			f.submit("d", domain.PriorityNormal)
			require.Equal(t, []string{"h", "a", "c", "d"}, ids(f.p.Queue()))

			tc.back(f)
			require.Equal(t, domain.StatusQueued, f.state["b"].Status)
			require.Equal(t, []string{"h", "a", "b", "c", "d"}, ids(f.p.Queue()))
			require.Equal(t, []string{"h", "a", "b", "c", "d"}, ids(f.p.List(projections.Filter{})))
			require.Equal(t, map[string]int{"urgent": 0, "high": 1, "normal": 4, "low": 0}, f.p.Stats().QueuedByPriority)
		})
	}
}

// scenario builds a projection with tasks in every status. Submission
// order is n2 u1 h1 n1 l1 h2 n3 l2 u2.
//
//	u1 urgent queued            u2 urgent dead_letter (max_reclaims)
//	h1 high assigned to a1      h2 high cancelled
//	n1 normal working on a2     n2 normal dead_letter (max_retries)
//	n3 normal assigned to a1
//	l1 low completed by a1      l2 low queued
func scenario(t *testing.T) *feed {
	t.Helper()
	f := newFeed(t)
	f.submitWith("n2", domain.PriorityNormal, 1)
	f.submit("u1", domain.PriorityUrgent)
	f.submit("h1", domain.PriorityHigh)
	f.submit("n1", domain.PriorityNormal)
	f.submit("l1", domain.PriorityLow)
	f.submit("h2", domain.PriorityHigh)
	f.submit("n3", domain.PriorityNormal)
	f.submit("l2", domain.PriorityLow)
	f.submit("u2", domain.PriorityUrgent)

	f.assign("n2", "a3")
	f.fail("n2")
	f.assign("h1", "a1")
	f.assign("n1", "a2")
	f.accept("n1")
	f.do(domain.ReportProgress{ID: "n1", AgentID: "a2", Generation: f.state["n1"].Generation, Message: "half"})
	f.assign("l1", "a1")
	f.complete("l1")
	f.do(domain.CancelTask{ID: "h2", By: "ops", Reason: "dup"})
	for i := range domain.DefaultMaxReclaims + 1 {
		f.assign("u2", fmt.Sprintf("dead-%d", i))
		f.do(domain.ReclaimTask{ID: "u2", Reason: "agent_gone"})
	}
	f.assign("n3", "a1")

	want := map[string]domain.Status{
		"u1": domain.StatusQueued, "u2": domain.StatusDeadLetter, "h1": domain.StatusAssigned,
		"h2": domain.StatusCancelled, "n1": domain.StatusWorking, "n2": domain.StatusDeadLetter,
		"n3": domain.StatusAssigned, "l1": domain.StatusCompleted, "l2": domain.StatusQueued,
	}
	for id, st := range want {
		require.Equal(t, st, f.state[id].Status, id)
	}
	return f
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	f := scenario(t)
	tests := []struct {
		name   string
		filter projections.Filter
		want   []string
	}{
		{"no filter leaves out dead letter", projections.Filter{}, []string{"u1", "h1", "h2", "n1", "n3", "l1", "l2"}},
		{"queued", projections.Filter{Status: domain.StatusQueued}, []string{"u1", "l2"}},
		{"assigned", projections.Filter{Status: domain.StatusAssigned}, []string{"h1", "n3"}},
		{"working", projections.Filter{Status: domain.StatusWorking}, []string{"n1"}},
		{"completed", projections.Filter{Status: domain.StatusCompleted}, []string{"l1"}},
		{"cancelled", projections.Filter{Status: domain.StatusCancelled}, []string{"h2"}},
		{"dead letter", projections.Filter{Status: domain.StatusDeadLetter}, []string{"u2", "n2"}},
		{"priority normal leaves out dead letter", projections.Filter{Priority: prio(domain.PriorityNormal)}, []string{"n1", "n3"}},
		{"priority normal dead letter", projections.Filter{Status: domain.StatusDeadLetter, Priority: prio(domain.PriorityNormal)}, []string{"n2"}},
		{"priority urgent", projections.Filter{Priority: prio(domain.PriorityUrgent)}, []string{"u1"}},
		{"queued low", projections.Filter{Status: domain.StatusQueued, Priority: prio(domain.PriorityLow)}, []string{"l2"}},
		{"queued high", projections.Filter{Status: domain.StatusQueued, Priority: prio(domain.PriorityHigh)}, []string{}},
		{"assigned_to a1 (completed keeps its agent)", projections.Filter{AssignedTo: "a1"}, []string{"h1", "n3", "l1"}},
		{"assigned_to a1 and assigned", projections.Filter{AssignedTo: "a1", Status: domain.StatusAssigned}, []string{"h1", "n3"}},
		{"assigned_to a1 and high", projections.Filter{AssignedTo: "a1", Priority: prio(domain.PriorityHigh)}, []string{"h1"}},
		{"assigned_to a2", projections.Filter{AssignedTo: "a2"}, []string{"n1"}},
		{"assigned_to a3 (dead-lettered, released)", projections.Filter{AssignedTo: "a3"}, []string{}},
		{"assigned_to a1 and queued", projections.Filter{AssignedTo: "a1", Status: domain.StatusQueued}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := f.p.List(tc.filter)
			require.Equal(t, tc.want, ids(got))
			for _, task := range got {
				require.Equal(t, f.state[task.ID], task)
			}
		})
	}
}

func TestDeadLetter(t *testing.T) {
	t.Parallel()
	f := scenario(t)
	dl := f.p.DeadLetter()
	require.Len(t, dl, 2)
	byID := map[string]*domain.Task{}
	for _, task := range dl {
		byID[task.ID] = task
		require.Equal(t, domain.StatusDeadLetter, task.Status)
		require.Empty(t, task.AssignedTo)
		require.Nil(t, task.AssignedAt)
	}
	require.Equal(t, "max_reclaims", byID["u2"].History[len(byID["u2"].History)-1].Detail)
	require.Equal(t, int32(6), byID["u2"].ReclaimCount)
	require.Equal(t, "max_retries", byID["n2"].History[len(byID["n2"].History)-1].Detail)
	require.Equal(t, int32(1), byID["n2"].RetryCount)
	require.Equal(t, "boom", byID["n2"].LastError)

	// Within one priority, oldest submission first.
	g := newFeed(t)
	for _, id := range []string{"x", "y", "z"} {
		g.submitWith(id, domain.PriorityNormal, 0)
	}
	for _, id := range []string{"z", "x", "y"} {
		g.assign(id, "a1")
		g.fail(id)
	}
	require.Equal(t, []string{"x", "y", "z"}, ids(g.p.DeadLetter()))
	require.Empty(t, g.p.Queue())

	// Retrying takes a task off the dead letter list.
	g.do(domain.RetryTask{ID: "y", By: "ops"})
	require.Equal(t, []string{"x", "z"}, ids(g.p.DeadLetter()))
	require.Equal(t, []string{"y"}, ids(g.p.Queue()))
	// Cancelling one takes it off too.
	g.do(domain.CancelTask{ID: "x", By: "ops"})
	require.Equal(t, []string{"z"}, ids(g.p.DeadLetter()))
}

// TestDeadLetterOldestSubmissionFirst checks DeadLetter's documented order
// ("the dead-lettered tasks, oldest submission first") across priorities.
func TestDeadLetterIsInQueueOrder(t *testing.T) {
	t.Parallel()
	f := scenario(t)
	// n2 (normal) was submitted first, u2 (urgent) last: priority comes
	// first, as everywhere tasks are listed.
	require.Equal(t, []string{"u2", "n2"}, ids(f.p.DeadLetter()))
}

func TestStats(t *testing.T) {
	t.Parallel()
	require.Equal(t, projections.Stats{
		ByStatus:         map[string]int{"waiting": 0, "queued": 0, "assigned": 0, "working": 0, "completed": 0, "dead_letter": 0, "cancelled": 0},
		ByPriority:       map[string]int{"urgent": 0, "high": 0, "normal": 0, "low": 0},
		QueuedByPriority: map[string]int{"urgent": 0, "high": 0, "normal": 0, "low": 0},
	}, projections.NewTasks().Stats())

	f := scenario(t)
	require.Equal(t, projections.Stats{
		Total:            9,
		ByStatus:         map[string]int{"waiting": 0, "queued": 2, "assigned": 2, "working": 1, "completed": 1, "dead_letter": 2, "cancelled": 1},
		ByPriority:       map[string]int{"urgent": 2, "high": 2, "normal": 3, "low": 2},
		QueuedByPriority: map[string]int{"urgent": 1, "high": 0, "normal": 0, "low": 1},
		Queued:           2,
		DeadLetter:       2,
		LastSeq:          f.seq,
	}, f.p.Stats())
	require.Equal(t, uint64(len(f.log)), f.seq)
	require.Equal(t, f.seq, f.p.LastSeq())
}

func TestGetReturnsTaskAndSeqOfItsNewestEvent(t *testing.T) {
	t.Parallel()
	f := scenario(t)
	newest := map[string]uint64{}
	for _, env := range f.log {
		newest[env.Aggregate] = env.Seq
	}
	require.Len(t, newest, 9)
	for id, seq := range newest {
		task, got, ok := f.p.Get(id)
		require.True(t, ok, id)
		require.Equal(t, seq, got, id)
		require.Equal(t, f.state[id], task, id)
	}

	// A heartbeat changes no status but is the task's newest event.
	envs := f.do(domain.ReportProgress{ID: "n1", AgentID: "a2", Generation: f.state["n1"].Generation})
	_, seq, ok := f.p.Get("n1")
	require.True(t, ok)
	require.Equal(t, envs[0].Seq, seq)
	// Other tasks keep theirs.
	_, seq, ok = f.p.Get("u1")
	require.True(t, ok)
	require.Equal(t, newest["u1"], seq)

	// A two-event append leaves the task at the second event's seq.
	f.assign("u1", "a9")
	envs = f.do(domain.FailTask{ID: "u1", AgentID: "a9", Generation: f.state["u1"].Generation, Error: "x"})
	require.Len(t, envs, 2)
	_, seq, _ = f.p.Get("u1")
	require.Equal(t, envs[1].Seq, seq)

	task, seq, ok := f.p.Get("nope")
	require.False(t, ok)
	require.Nil(t, task)
	require.Equal(t, uint64(0), seq)
}

func TestApplyRejectsNonIncreasingSeq(t *testing.T) {
	t.Parallel()
	submitted := domain.TaskSubmitted{Description: "d", Priority: domain.PriorityNormal, MaxRetries: 3, MaxReclaims: 5}
	env := func(id string, seq uint64, e domain.Event) domain.Envelope {
		return domain.Envelope{ID: fmt.Sprintf("evt-%d", seq), Type: e.EventType(), Version: e.SchemaVersion(),
			Time: start.Add(time.Duration(seq) * time.Second), Aggregate: id, Data: e, Seq: seq}
	}

	t.Run("zero seq on an empty projection", func(t *testing.T) {
		t.Parallel()
		p := projections.NewTasks()
		require.Error(t, p.Apply(env("t1", 0, submitted)))
		require.Equal(t, projections.NewTasks().State(), p.State())
	})

	tests := []struct {
		name string
		seq  uint64
	}{
		{"equal", 5},
		{"lower", 4},
		{"much lower", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := projections.NewTasks()
			require.NoError(t, p.Apply(env("t1", 2, submitted), env("t1", 5, domain.TaskAssigned{AgentID: "a1", Generation: 1})))
			before := p.State()
			beforeStats := p.Stats()

			err := p.Apply(env("t2", tc.seq, submitted))
			require.Error(t, err)
			require.Contains(t, err.Error(), fmt.Sprintf("sequence %d is not after 5", tc.seq))
			require.Equal(t, before, p.State())
			require.Equal(t, beforeStats, p.Stats())
			_, _, ok := p.Get("t2")
			require.False(t, ok)

			err = p.Apply(env("t1", tc.seq, domain.TaskAccepted{AgentID: "a1", Generation: 1}))
			require.Error(t, err)
			require.Equal(t, before, p.State())
			task, seq, ok := p.Get("t1")
			require.True(t, ok)
			require.Equal(t, uint64(5), seq)
			require.Equal(t, domain.StatusAssigned, task.Status)
		})
	}

	t.Run("repeated within one batch", func(t *testing.T) {
		t.Parallel()
		p := projections.NewTasks()
		err := p.Apply(env("t1", 3, submitted), env("t2", 3, submitted))
		require.Error(t, err)
		require.Equal(t, uint64(3), p.LastSeq())
		_, _, ok := p.Get("t2")
		require.False(t, ok)
	})
}

func TestApplyRejectsEventForUnknownTask(t *testing.T) {
	t.Parallel()
	f := newFeed(t)
	f.submit("t1", domain.PriorityNormal)
	before := f.p.State()
	for _, e := range []domain.Event{
		domain.TaskAssigned{AgentID: "a1", Generation: 1},
		domain.TaskProgressed{AgentID: "a1"},
		domain.TaskCancelled{By: "ops"},
	} {
		err := f.p.Apply(domain.Envelope{ID: "evt-x", Type: e.EventType(), Version: 1, Time: start,
			Aggregate: "ghost", Data: e, Seq: 100})
		require.Error(t, err)
		require.Contains(t, err.Error(), "task ghost is unknown")
		require.Equal(t, before, f.p.State())
		require.Equal(t, uint64(1), f.p.LastSeq())
		_, _, ok := f.p.Get("ghost")
		require.False(t, ok)
		require.Equal(t, 1, f.p.Stats().Total)
	}
}

func TestStateIsDeterministic(t *testing.T) {
	t.Parallel()
	f := scenario(t)
	state := f.p.State()

	require.Equal(t, f.seq, state.LastSeq)
	require.Equal(t, []string{"u1", "l2"}, state.Queue)
	// Every task not dead-lettered in queue order, then the dead letter list
	// (whose own order TestDeadLetter* checks).
	require.Equal(t, append([]string{"u1", "h1", "h2", "n1", "n3", "l1", "l2"}, ids(f.p.DeadLetter())...), ids(state.Tasks))
	require.Len(t, state.Tasks, 9)
	for _, task := range state.Tasks {
		require.Equal(t, f.state[task.ID], task)
	}

	oneByOne := projections.NewTasks()
	for _, env := range f.log {
		require.NoError(t, oneByOne.Apply(env))
	}
	allAtOnce := projections.NewTasks()
	require.NoError(t, allAtOnce.Apply(f.log...))

	require.Equal(t, state, oneByOne.State())
	require.Equal(t, state, allAtOnce.State())
	require.Equal(t, f.p.Stats(), oneByOne.Stats())
	require.Equal(t, f.p.Stats(), allAtOnce.Stats())

	// Replaying through the codec gives the same state too.
	decoded := projections.NewTasks()
	for _, env := range f.log {
		b, err := domain.EncodeEnvelope(env)
		require.NoError(t, err)
		got, err := domain.DecodeEnvelope(b)
		require.NoError(t, err)
		got.Seq = env.Seq
		require.NoError(t, decoded.Apply(got))
	}
	require.Equal(t, state, decoded.State())
}

func TestConcurrentReadersWhileApplying(t *testing.T) {
	t.Parallel()
	f := scenario(t)
	p := projections.NewTasks()
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				_ = p.Queue()
				_ = p.List(projections.Filter{AssignedTo: "a1"})
				_ = p.DeadLetter()
				_ = p.Stats()
				_ = p.State()
				if task, _, ok := p.Get("n1"); ok {
					_ = task.Status
				}
			}
		})
	}
	for _, env := range f.log {
		require.NoError(t, p.Apply(env))
	}
	close(done)
	wg.Wait()
	require.Equal(t, f.p.State(), p.State())
}
