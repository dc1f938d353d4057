package domain_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
)

// agentFeed applies events to one agent, a second apart.
type agentFeed struct {
	t  *testing.T
	a  *domain.Agent
	at time.Time
}

func newAgentFeed(t *testing.T, slots int) *agentFeed {
	f := &agentFeed{t: t, at: t0}
	f.agent(domain.AgentConnected{Session: "s1", Capabilities: []string{}, MaxTasks: slots})
	return f
}

func (f *agentFeed) agent(e domain.Event) *domain.Agent {
	return f.apply("a1", e)
}

func (f *agentFeed) task(id string, e domain.Event) *domain.Agent {
	return f.apply(id, e)
}

func (f *agentFeed) apply(aggregate string, e domain.Event) *domain.Agent {
	f.t.Helper()
	f.at = f.at.Add(time.Second)
	env := domain.Envelope{ID: "evt", Type: e.EventType(), Version: e.SchemaVersion(), Time: f.at, Aggregate: aggregate, Data: e}
	before := f.a
	f.a = domain.EvolveAgent(f.a, env)
	require.NotSame(f.t, before, f.a, "EvolveAgent returns a new agent")
	return f.a
}

func heldIDs(a *domain.Agent) []string {
	var out []string
	for _, h := range a.Tasks {
		out = append(out, h.ID)
	}
	return out
}

// An agent with three slots takes three tasks and no fourth; its state
// follows what it holds, and CurrentTask names the oldest.
func TestAgentSlotsFillAndFree(t *testing.T) {
	t.Parallel()
	f := newAgentFeed(t, 3)
	require.Equal(t, domain.StateIdle, f.a.State)
	require.True(t, f.a.Available())
	for i, id := range []string{"t1", "t2", "t3"} {
		f.task(id, domain.TaskAssigned{AgentID: "a1", Generation: uint64(i + 1)})
	}
	require.Equal(t, domain.StateAssigned, f.a.State)
	require.Equal(t, []string{"t1", "t2", "t3"}, heldIDs(f.a))
	require.Zero(t, f.a.Free())
	require.False(t, f.a.Available())
	require.Error(t, domain.CanAssign(f.a, "a1", nil, 0))

	f.task("t4", domain.TaskAssigned{AgentID: "a1", Generation: 1})
	require.Equal(t, 1, f.a.Invalid, "a fourth task does not fit three slots")
	require.Len(t, f.a.Tasks, 3)

	f.task("t2", domain.TaskAccepted{AgentID: "a1", Generation: 2})
	require.Equal(t, domain.StateWorking, f.a.State)
	f.task("t2", domain.TaskCompleted{AgentID: "a1", Generation: 2})
	require.Equal(t, domain.StateAssigned, f.a.State, "two still wait to start")
	require.Equal(t, "t1", f.a.CurrentTask)
	require.Equal(t, uint64(1), f.a.Generation)
	require.Equal(t, 1, f.a.Free())

	f.task("t1", domain.TaskReclaimed{AgentID: "a1", Generation: 2})
	f.task("t3", domain.TaskCancelled{})
	require.Equal(t, domain.StateIdle, f.a.State)
	require.Nil(t, f.a.Tasks)
	require.Empty(t, f.a.CurrentTask)
	require.Equal(t, 1, f.a.Invalid)
}

// Assignments in flight count against the free slots.
func TestCanAssignCountsReservedSlots(t *testing.T) {
	t.Parallel()
	f := newAgentFeed(t, 2)
	f.task("t1", domain.TaskAssigned{AgentID: "a1", Generation: 1})
	require.NoError(t, domain.CanAssign(f.a, "a1", nil, 0))
	err := domain.CanAssign(f.a, "a1", nil, 1)
	require.ErrorIs(t, err, domain.ErrInvalidState)
	require.EqualError(t, err, "cannot assign a task to agent a1: it is full (2 tasks in 2 slots)")

	one := newAgentFeed(t, 0)
	one.task("t1", domain.TaskAssigned{AgentID: "a1", Generation: 1})
	require.EqualError(t, domain.CanAssign(one.a, "a1", nil, 0), "cannot assign a task to agent a1: it is assigned")
}

// Blocking names one held task: the agent is blocked only when no started
// task is still at work.
func TestAgentBlocksPerTask(t *testing.T) {
	t.Parallel()
	f := newAgentFeed(t, 2)
	for _, id := range []string{"t1", "t2"} {
		f.task(id, domain.TaskAssigned{AgentID: "a1", Generation: 1})
		f.task(id, domain.TaskAccepted{AgentID: "a1", Generation: 1})
	}
	require.NoError(t, mustDecide(t, domain.BlockAgent{ID: "a1", TaskID: "t1"}, f.a))
	f.agent(domain.AgentBlocked{TaskID: "t1"})
	require.Equal(t, domain.StateWorking, f.a.State, "t2 still works")
	require.Error(t, mustDecide(t, domain.BlockAgent{ID: "a1", TaskID: "t1"}, f.a), "t1 is blocked already")
	require.Error(t, mustDecide(t, domain.UnblockAgent{ID: "a1", TaskID: "t2"}, f.a), "t2 is not blocked")
	f.agent(domain.AgentBlocked{TaskID: "t2"})
	require.Equal(t, domain.StateBlocked, f.a.State)
	f.task("t2", domain.TaskCompleted{AgentID: "a1", Generation: 1})
	require.Equal(t, domain.StateBlocked, f.a.State)
	f.agent(domain.AgentUnblocked{TaskID: "t1"})
	require.Equal(t, domain.StateWorking, f.a.State)
	f.agent(domain.AgentUnblocked{TaskID: "t9"})
	require.Equal(t, 1, f.a.Invalid, "unblocking a task not held")
}

func mustDecide(t *testing.T, cmd domain.AgentCommand, a *domain.Agent) error {
	t.Helper()
	_, err := cmd.DecideAgent(a, t0)
	return err
}

// An agent offline keeps its tasks (the reconnect grace); its hello
// resumes those the hub continued, and it may have a new number of slots.
func TestAgentOfflineKeepsTasksUntilHello(t *testing.T) {
	t.Parallel()
	f := newAgentFeed(t, 4)
	f.task("t1", domain.TaskAssigned{AgentID: "a1", Generation: 1})
	f.task("t2", domain.TaskAssigned{AgentID: "a1", Generation: 3})
	f.agent(domain.AgentDisconnected{Reason: "gone"})
	require.Equal(t, domain.StateOffline, f.a.State)
	require.Len(t, f.a.Tasks, 2)
	f.task("t1", domain.TaskCompleted{AgentID: "a1", Generation: 1})
	require.Equal(t, domain.StateOffline, f.a.State, "a report does not bring it back online")
	require.False(t, f.a.Available())

	f.agent(domain.AgentConnected{Session: "s2", Capabilities: []string{}, MaxTasks: 8,
		Tasks: []domain.HeldTask{{ID: "t2", Generation: 3, State: domain.StateWorking}}})
	require.Equal(t, domain.StateWorking, f.a.State)
	require.Equal(t, 7, f.a.Free())
	require.Equal(t, "t2", f.a.CurrentTask)
	require.Equal(t, uint64(3), f.a.Generation)
	require.Zero(t, f.a.Invalid)
}

// An agent.connected from before slots names one task by TaskID.
func TestAgentConnectedFromBeforeSlots(t *testing.T) {
	t.Parallel()
	f := newAgentFeed(t, 0)
	f.task("t1", domain.TaskAssigned{AgentID: "a1", Generation: 5})
	f.agent(domain.AgentConnected{Session: "s2", Capabilities: []string{}, TaskID: "t1", Working: true})
	require.Equal(t, []domain.HeldTask{{ID: "t1", Generation: 5, State: domain.StateWorking}}, f.a.Tasks)
	require.Equal(t, domain.StateWorking, f.a.State)
	require.Equal(t, 1, f.a.Slots())

	old := domain.Agent{ID: "a2", State: domain.StateAssigned, CurrentTask: "t7", Generation: 2}
	old.Upgrade()
	require.Equal(t, []domain.HeldTask{{ID: "t7", Generation: 2, State: domain.StateAssigned}}, old.Tasks)
}

func TestConnectAgentChecksMaxTasks(t *testing.T) {
	t.Parallel()
	for _, n := range []int{-1, domain.MaxAgentTasks + 1} {
		_, err := domain.ConnectAgent{ID: "a1", Session: "s1", MaxTasks: n}.DecideAgent(nil, t0)
		var v *domain.ValidationError
		require.ErrorAs(t, err, &v, "max_tasks %d", n)
		require.Equal(t, "max_tasks", v.Fields[0].Field)
	}
	events, err := domain.ConnectAgent{ID: "a1", Session: "s1", MaxTasks: domain.MaxAgentTasks}.DecideAgent(nil, t0)
	require.NoError(t, err)
	require.Equal(t, domain.MaxAgentTasks, events[0].(domain.AgentConnected).MaxTasks)
}

// An assignment accepted when made (implied_accept) is working at once,
// for the task and for the agent.
func TestImpliedAcceptWorksAtOnce(t *testing.T) {
	t.Parallel()
	f := newAgentFeed(t, 2)
	f.task("t1", domain.TaskAssigned{AgentID: "a1", Generation: 1, Accepted: true})
	require.Equal(t, domain.StateWorking, f.a.State)
	require.Zero(t, f.a.Invalid)
	events, err := domain.AssignTask{ID: "t1", AgentID: "a1", Accepted: true}.Decide(queuedTask(), t0)
	require.NoError(t, err)
	task := domain.Evolve(queuedTask(), envelope(events[0], tE))
	require.Equal(t, domain.StatusWorking, task.Status)
	require.Equal(t, "accepted when assigned", task.History[len(task.History)-1].Detail)
}
