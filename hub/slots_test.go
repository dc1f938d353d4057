package hub

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/agents"
	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
)

// helloSlots says hello with max_tasks and what the agent holds, and
// returns the reply.
func (a *testAgent) helloSlots(t *testing.T, slots int, held ...protocol.Holding) protocol.HelloReply {
	t.Helper()
	status, body := a.request(broker.VerbHello, protocol.Hello{Name: a.id, Capabilities: []string{}, Session: a.session,
		MaxTasks: slots, Held: held})
	require.Equal(t, 200, status, string(body))
	var reply protocol.HelloReply
	require.NoError(t, json.Unmarshal(body, &reply))
	return reply
}

// An agent with three slots is given three tasks at once and no more; a
// slot that comes free takes the next one, and work spreads over agents.
func TestAgentWithSlotsTakesThatManyTasks(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelDebug, func(*config.Hub) {})
	wide := dialTestAgent(t, h, "wide", ignore)
	wide.helloSlots(t, 3)
	for i := range 5 {
		h.submit(t, fmt.Sprintf(`{"description":"t%d"}`, i))
	}
	require.Eventually(t, func() bool { return len(wide.assignments()) == 3 }, 15*time.Second, 5*time.Millisecond)
	narrow := newTestAgent(t, h, "narrow", []string{}, ignore)
	require.Eventually(t, func() bool { return len(narrow.assignments()) == 1 }, 15*time.Second, 5*time.Millisecond)
	a, _, _ := h.Agents().Get("wide")
	require.Len(t, a.Tasks, 3)
	require.Equal(t, domain.StateAssigned, a.State)
	require.Equal(t, 1, h.Tasks().QueueDepth(), "the fifth waits for a free slot")
	require.Len(t, wide.assignments(), 3)

	first := wide.assignments()[0]
	require.Equal(t, 200, wide.call(broker.VerbAccept, protocol.TaskRef{TaskID: first.TaskID, Generation: first.Generation}))
	require.Equal(t, 200, wide.call(broker.VerbComplete, protocol.Complete{TaskID: first.TaskID, Generation: first.Generation}))
	require.Eventually(t, func() bool { return len(wide.assignments()) == 4 }, 15*time.Second, 5*time.Millisecond)
	a, _, _ = h.Agents().Get("wide")
	require.Len(t, a.Tasks, 3)
	require.Zero(t, a.Invalid)
	require.Zero(t, h.Tasks().QueueDepth())
}

// A hello settles each task it reports: continue for what the hub still
// gives the agent (an accept it missed is recorded), abort for the rest,
// and a task it holds but did not report is taken back.
func TestHelloSettlesEveryHeldTask(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	a := dialTestAgent(t, h, "multi", ignore)
	a.helloSlots(t, 4)
	var held []*domain.Task
	for i := range 3 {
		id := h.submit(t, fmt.Sprintf(`{"description":"t%d"}`, i))
		task, err := h.svc.Execute(t.Context(), domain.AssignTask{ID: id, AgentID: "multi"})
		require.NoError(t, err)
		held = append(held, task)
	}
	require.Equal(t, 200, a.call(broker.VerbAccept, protocol.TaskRef{TaskID: held[0].ID, Generation: held[0].Generation}))

	a.session = "s-multi-2"
	reply := a.helloSlots(t, 4,
		protocol.Holding{TaskID: held[0].ID, Generation: held[0].Generation, Status: "working"},
		protocol.Holding{TaskID: held[1].ID, Generation: held[1].Generation, Status: "working"}, // accept not stored
		protocol.Holding{TaskID: held[2].ID, Generation: held[2].Generation + 1, Status: "assigned"},
		protocol.Holding{TaskID: "task-unknown", Generation: 1, Status: "working"})
	require.Len(t, reply.Tasks, 4)
	actions := map[string]string{}
	for _, st := range reply.Tasks {
		actions[st.TaskID] = st.Action
	}
	require.Equal(t, map[string]string{held[0].ID: protocol.ActionContinue, held[1].ID: protocol.ActionContinue,
		held[2].ID: protocol.ActionAbort, "task-unknown": protocol.ActionAbort}, actions)
	require.Empty(t, reply.Action, "the single-task answer is only for a hello of one task")

	ag, _, _ := h.Agents().Get("multi")
	require.Equal(t, []domain.HeldTask{
		{ID: held[0].ID, Generation: held[0].Generation, State: domain.StateWorking},
		{ID: held[1].ID, Generation: held[1].Generation, State: domain.StateWorking},
	}, ag.Tasks)
	require.Equal(t, domain.StateWorking, ag.State)
	require.Equal(t, 4, ag.Slots())
	for i, want := range []domain.Status{domain.StatusWorking, domain.StatusWorking, domain.StatusQueued} {
		task, _, _ := h.Tasks().Get(held[i].ID)
		require.Equal(t, want, task.Status, "task %d", i)
	}
	require.Equal(t, 1, reclaims(t, h)[agents.ReasonAgentLostTask])
}

// A hello may not claim more slots than the hub allows.
func TestHelloRefusesTooManySlots(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	a := dialTestAgent(t, h, "greedy", ignore)
	status, body := a.request(broker.VerbHello, protocol.Hello{Session: a.session, Capabilities: []string{},
		MaxTasks: domain.MaxAgentTasks + 1})
	require.Equal(t, 422, status)
	require.Contains(t, string(body), "max_tasks must be between 1 and 1000")
	_, _, ok := h.Agents().Get("greedy")
	require.False(t, ok, "nothing stored")
}

// An agent that asks for batch and implied acceptance gets the queue's
// tasks in one push, already working, and reports them in one request,
// each outcome fenced and answered on its own.
func TestBatchedAgentTakesAPushOfTasksAndReportsThemTogether(t *testing.T) {
	t.Parallel()
	h := startHubCfg(t, "", logsink.LevelDebug, func(*config.Hub) {})
	var ids []string
	for i := range 5 {
		ids = append(ids, h.submit(t, fmt.Sprintf(`{"description":"b%d","max_retries":2}`, i)))
	}
	a := dialTestAgent(t, h, "batcher", ignore)
	status, body := a.request(broker.VerbHello, protocol.Hello{Session: a.session, Capabilities: []string{},
		MaxTasks: 5, Batch: true, ImpliedAccept: true})
	require.Equal(t, 200, status, string(body))
	require.Eventually(t, func() bool { return len(a.assignments()) == 5 }, 15*time.Second, 5*time.Millisecond)
	a.mu.Lock()
	require.Equal(t, []int{5}, a.batches, "one push carries the five")
	a.mu.Unlock()
	gen := map[string]uint64{}
	for _, as := range a.assignments() {
		task, _, _ := h.Tasks().Get(as.TaskID)
		require.Equal(t, domain.StatusWorking, task.Status, "accepted when assigned")
		gen[as.TaskID] = as.Generation
	}
	ag, _, _ := h.Agents().Get("batcher")
	require.Equal(t, domain.StateWorking, ag.State)

	reports := protocol.Reports{Reports: []protocol.Report{
		{Verb: broker.VerbComplete, TaskID: ids[0], Generation: gen[ids[0]], Result: json.RawMessage(`"r0"`)},
		{Verb: broker.VerbComplete, TaskID: ids[1], Generation: gen[ids[1]] + 1},
		{Verb: broker.VerbFail, TaskID: ids[2], Generation: gen[ids[2]], Error: "broke"},
		{Verb: broker.VerbProgress, TaskID: ids[3], Generation: gen[ids[3]]},
		{Verb: broker.VerbComplete, TaskID: "task-missing", Generation: 1},
	}}
	status, body = a.request(broker.VerbReport, reports)
	require.Equal(t, 200, status, string(body))
	var reply protocol.ReportsReply
	require.NoError(t, json.Unmarshal(body, &reply))
	require.Len(t, reply.Results, 5)
	var got []string
	for _, r := range reply.Results {
		got = append(got, fmt.Sprintf("%s %d %s%s", r.TaskID, r.Status, r.TaskStatus, r.Error))
	}
	require.Equal(t, []string{
		ids[0] + " 200 completed", ids[1] + " 409 stale_generation", ids[2] + " 200 queued",
		ids[3] + " 200 working", "task-missing 404 not_found",
	}, got)
	done, _, _ := h.Tasks().Get(ids[0])
	require.JSONEq(t, `"r0"`, string(done.Result))
}

// One task's reports in a batch run in the order given: an accept before
// its complete, for every task of the batch.
func TestBatchedReportKeepsEachTasksOrder(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	a := dialTestAgent(t, h, "ordered", ignore)
	a.helloSlots(t, 40)
	var reports []protocol.Report
	for i := range 40 {
		id := h.submit(t, fmt.Sprintf(`{"description":"o%d"}`, i))
		task, err := h.svc.Execute(t.Context(), domain.AssignTask{ID: id, AgentID: "ordered"})
		require.NoError(t, err)
		reports = append(reports, protocol.Report{Verb: broker.VerbAccept, TaskID: id, Generation: task.Generation},
			protocol.Report{Verb: broker.VerbComplete, TaskID: id, Generation: task.Generation})
	}
	status, body := a.request(broker.VerbReport, protocol.Reports{Reports: reports})
	require.Equal(t, 200, status, string(body))
	var reply protocol.ReportsReply
	require.NoError(t, json.Unmarshal(body, &reply))
	for i, r := range reply.Results {
		require.Equal(t, 200, r.Status, "report %d (%s of %s): %s", i, reports[i].Verb, r.TaskID, r.Detail)
	}
}

// A batched report is refused whole when it cannot be read as one.
func TestBatchedReportIsRefusedWhole(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	a := newTestAgent(t, h, "sloppy", []string{}, ignore)
	for body, want := range map[string]string{
		`{"reports":[]}`: "reports holds 0 outcomes; 1 to 1000",
		`{"reports":[{"verb":"decline","task_id":"task-1","generation":1}]}`:     "one of accept, progress, complete, fail",
		`{"reports":[{"verb":"complete","task_id":"no spaces","generation":1}]}`: "is not a task id",
		`{"reports":{}}`: "the body is not the expected JSON",
	} {
		status, out := a.request(broker.VerbReport, json.RawMessage(body))
		require.Equal(t, 422, status, body)
		require.Contains(t, string(out), want, body)
	}
}
