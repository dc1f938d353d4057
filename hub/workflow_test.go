package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/config"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/storeops"
)

// post sends a POST with the admin token and extra headers.
func (h *testHub) post(t *testing.T, path, body string, headers map[string]string) (int, map[string]any) {
	t.Helper()
	return h.doWith(t, http.MethodPost, path, h.token, body, headers)
}

// completeWith accepts and completes every assignment with result.
func completeWith(result string) func(*testAgent, protocol.Assignment) {
	return func(a *testAgent, as protocol.Assignment) {
		a.call(broker.VerbComplete, protocol.Complete{TaskID: as.TaskID, Generation: as.Generation, Result: json.RawMessage(result)})
	}
}

func startRunningHub(t *testing.T, dir string) *testHub {
	t.Helper()
	return startHubCfg(t, dir, logsink.LevelDebug, func(cfg *config.Hub) { cfg.Store.SyncInterval = 0 })
}

// task reads a task from the hub's projection.
func (h *testHub) task(t *testing.T, id string) *domain.Task {
	t.Helper()
	task, _, ok := h.views.Tasks.Get(id)
	require.True(t, ok, id)
	return task
}

func (h *testHub) waitStatus(t *testing.T, id string, want domain.Status) *domain.Task {
	t.Helper()
	require.Eventually(t, func() bool { return h.task(t, id).Status == want }, 15*time.Second, 5*time.Millisecond,
		"task %s never became %s", id, want)
	return h.task(t, id)
}

// TestFiftyRacingSubmitsWithOneIdempotencyKeyMakeOneTask sends 50
// submits with one key at once, half by header over HTTP, half by field
// over NATS: exactly one task is made and every answer names it.
func TestFiftyRacingSubmitsWithOneIdempotencyKeyMakeOneTask(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	nc, err := nats.Connect(h.NATSURL(), nats.Token(h.token))
	require.NoError(t, err)
	defer nc.Close()
	var wg sync.WaitGroup
	ids := make([]string, 50)
	codes := make([]int, 50)
	for i := range 50 {
		wg.Go(func() {
			if i%2 == 0 {
				code, out := h.post(t, "/api/tasks", fmt.Sprintf(`{"description":"deploy %d"}`, i),
					map[string]string{"Idempotency-Key": "deploy-42"})
				codes[i], ids[i] = code, fmt.Sprint(out["task_id"])
				return
			}
			code, out := natsDo(t, nc, broker.Command(broker.CmdTaskSubmit),
				[]byte(fmt.Sprintf(`{"description":"deploy %d","idempotency_key":"deploy-42"}`, i)))
			codes[i], ids[i] = code, fmt.Sprint(out["task_id"])
		})
	}
	wg.Wait()
	created := 0
	for i := range 50 {
		require.Equal(t, ids[0], ids[i], "answer %d", i)
		require.Contains(t, []int{200, 201}, codes[i], "answer %d", i)
		if codes[i] == 201 {
			created++
		}
	}
	require.Equal(t, 1, created, "exactly one answer is the one that made it")
	require.Equal(t, 1, h.views.Tasks.Stats().Total)
	require.Equal(t, "deploy-42", h.task(t, ids[0]).IdempotencyKey)

	// Another key, or none, makes another task.
	code, out := h.post(t, "/api/tasks", `{"description":"other"}`, map[string]string{"Idempotency-Key": "deploy-43"})
	require.Equal(t, 201, code)
	require.NotEqual(t, ids[0], out["task_id"])
	code, out = h.post(t, "/api/tasks", `{"description":"x"}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 256)})
	require.Equal(t, 422, code)
	require.Equal(t, "Idempotency-Key", fieldOf(out))
}

// TestARetriedSubmitIsAnsweredFromTheFirst resends a submit with the same
// request id (its answer was lost): the same task answers, and no second
// one is stored.
func TestARetriedSubmitIsAnsweredFromTheFirst(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	rid := map[string]string{"X-Request-Id": "req-retry-1"}
	code, first := h.post(t, "/api/tasks", `{"description":"once"}`, rid)
	require.Equal(t, 201, code)
	code, again := h.post(t, "/api/tasks", `{"description":"once"}`, rid)
	require.Equal(t, 201, code, "the retry gets the first outcome")
	require.Equal(t, first["task_id"], again["task_id"])
	code, batch := h.post(t, "/api/tasks/batch", `{"tasks":[{"description":"a"},{"description":"b"}]}`,
		map[string]string{"X-Request-Id": "req-retry-2"})
	require.Equal(t, 201, code)
	_, batchAgain := h.post(t, "/api/tasks/batch", `{"tasks":[{"description":"a"},{"description":"b"}]}`,
		map[string]string{"X-Request-Id": "req-retry-2"})
	require.Equal(t, batch["tasks"], batchAgain["tasks"])
	require.Equal(t, 3, h.views.Tasks.Stats().Total)
}

// TestADependentWaitsThenRunsAtItsSubmittedAge: a task waits (not queued,
// not handed out) until its dependency completes, then is queued ahead of
// a task submitted after it; its push carries the dependency's result and
// its history says why it waited and what released it.
func TestADependentWaitsThenRunsAtItsSubmittedAge(t *testing.T) {
	t.Parallel()
	h := startRunningHub(t, "")
	first := h.submit(t, `{"description":"build","needed_capabilities":["build"]}`)
	dep := h.submit(t, fmt.Sprintf(`{"description":"deploy","needed_capabilities":["deploy"],"depends_on":[%q]}`, first))
	later := h.submit(t, `{"description":"later","needed_capabilities":["deploy"]}`)
	require.Equal(t, domain.StatusWaiting, h.task(t, dep).Status)
	stats := h.views.Tasks.Stats()
	require.Equal(t, 1, stats.ByStatus["waiting"])
	require.Equal(t, 2, stats.Queued)

	newTestAgent(t, h, "builder", []string{"build"}, completeWith(`{"artifact":"app.tar"}`))
	h.waitStatus(t, dep, domain.StatusQueued)
	var queue []string
	for _, q := range h.views.Tasks.Queue() {
		queue = append(queue, q.ID)
	}
	require.Equal(t, []string{dep, later}, queue, "released at the age it was submitted")
	history := h.task(t, dep).History
	require.Equal(t, domain.TypeTaskWaiting, history[1].Event)
	require.Equal(t, "waiting on "+first, history[1].Detail)
	require.Equal(t, domain.TypeTaskReleased, history[2].Event)
	require.Equal(t, "released by "+first, history[2].Detail)

	deployer := newTestAgent(t, h, "deployer", []string{"deploy"}, ignore)
	require.Eventually(t, func() bool { return len(deployer.assignments()) > 0 }, 10*time.Second, 5*time.Millisecond)
	got := deployer.assignments()[0]
	require.Equal(t, dep, got.TaskID)
	require.Equal(t, []protocol.DependencyResult{{TaskID: first, Status: "completed",
		Result: json.RawMessage(`{"artifact":"app.tar"}`)}}, got.Dependencies)
}

// TestAFailedDependencyCancelsOrRunsItsDependents: a dead-lettered
// dependency cancels a dependent by default and releases one that runs on
// failure; a dependent of a task already complete is queued at once.
func TestAFailedDependencyCancelsOrRunsItsDependents(t *testing.T) {
	t.Parallel()
	h := startRunningHub(t, "")
	dep := h.submit(t, `{"description":"tests","max_retries":0,"needed_capabilities":["tests"]}`)
	cancelled := h.submit(t, fmt.Sprintf(`{"description":"deploy","needed_capabilities":["x"],"depends_on":[%q]}`, dep))
	runs := h.submit(t, fmt.Sprintf(`{"description":"report","needed_capabilities":["x"],"depends_on":[%q],"on_dependency_failure":"run"}`, dep))
	newTestAgent(t, h, "tester", []string{"tests"}, failAtOnce)
	got := h.waitStatus(t, cancelled, domain.StatusCancelled)
	require.Equal(t, "dependency "+dep+" is dead_letter", got.History[len(got.History)-1].Detail)
	got = h.waitStatus(t, runs, domain.StatusQueued)
	require.Contains(t, got.History[len(got.History)-1].Detail, "on_dependency_failure run")

	done := h.submit(t, `{"description":"done","needed_capabilities":["build"]}`)
	newTestAgent(t, h, "builder", []string{"build"}, completeAtOnce)
	h.waitStatus(t, done, domain.StatusCompleted)
	now := h.submit(t, fmt.Sprintf(`{"description":"after done","needed_capabilities":["x"],"depends_on":[%q]}`, done))
	require.Equal(t, domain.StatusQueued, h.task(t, now).Status, "nothing to wait for")
}

// TestDependenciesThatCannotHoldAreRefused: an unknown id and a cycle
// are 422 with the field named, and nothing is stored.
func TestDependenciesThatCannotHoldAreRefused(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	code, out := h.post(t, "/api/tasks", `{"description":"x","depends_on":["task-nope"]}`, nil)
	require.Equal(t, 422, code, out)
	require.Equal(t, "depends_on[0]", fieldOf(out))
	code, out = h.post(t, "/api/tasks/batch", `{"tasks":[
		{"ref":"a","description":"a","depends_on":["b"]},
		{"ref":"b","description":"b","depends_on":["a"]}]}`, nil)
	require.Equal(t, 422, code, out)
	require.Equal(t, "tasks[1].depends_on[0]", fieldOf(out))
	require.Contains(t, fmt.Sprint(out), "cycle")
	code, out = h.post(t, "/api/tasks", `{"description":"x","on_dependency_failure":"maybe"}`, nil)
	require.Equal(t, 422, code, out)
	require.Equal(t, "on_dependency_failure", fieldOf(out))
	require.Equal(t, 0, h.views.Tasks.Stats().Total)
}

// TestABatchCarriesItsOwnDependencies: refs name tasks of the same batch;
// they wait on each other as given and survive a restart while waiting.
func TestABatchCarriesItsOwnDependencies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startRunningHub(t, dir)
	code, out := h.post(t, "/api/tasks/batch", `{"tasks":[
		{"ref":"test","description":"test","needed_capabilities":["t"]},
		{"ref":"deploy","description":"deploy","needed_capabilities":["d"],"depends_on":["test"]}]}`, nil)
	require.Equal(t, 201, code, out)
	tasks := out["tasks"].([]any)
	test, deploy := tasks[0].(map[string]any)["task_id"].(string), tasks[1].(map[string]any)["task_id"].(string)
	require.Equal(t, "waiting", tasks[1].(map[string]any)["status"])
	require.Equal(t, []string{test}, h.task(t, deploy).DependsOn)
	h.Stop()

	h = startRunningHub(t, dir)
	require.Equal(t, domain.StatusWaiting, h.task(t, deploy).Status)
	require.Equal(t, []string{deploy}, h.views.Tasks.Dependents(test))
	newTestAgent(t, h, "tester", []string{"t"}, completeAtOnce)
	h.waitStatus(t, deploy, domain.StatusQueued)
}

// TestAGoalsFinishedTasksCompactTogether: a goal's finished task keeps its
// events while another task of the goal is open; once the goal settles,
// all its tasks compact, and a replay still says why the dependent waited
// and what released it.
func TestAGoalsFinishedTasksCompactTogether(t *testing.T) {
	t.Parallel()
	h := startHub(t, "")
	ctx := t.Context()
	first := h.submit(t, `{"description":"one","goal_id":"g"}`)
	second := h.submit(t, fmt.Sprintf(`{"description":"two","goal_id":"g","depends_on":[%q]}`, first))
	finish := func(id string) {
		task, err := h.svc.Execute(ctx, domain.AssignTask{ID: id, AgentID: "a1"})
		require.NoError(t, err)
		_, err = h.svc.Execute(ctx, domain.CompleteTask{ID: id, AgentID: "a1", Generation: task.Generation})
		require.NoError(t, err)
	}
	connectAgent(t, h.Hub, "a1")
	finish(first)
	h.waitStatus(t, second, domain.StatusQueued)
	res, err := h.ops.CompactBefore(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Zero(t, res.Compacted, "the goal is open: its finished task waits for the others")

	finish(second)
	res, err = h.ops.CompactBefore(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, 2, res.Compacted)
	replayed, err := storeops.ReplayStore(ctx, h.Store(), storeops.ReplayOpts{})
	require.NoError(t, err)
	live := h.views.Tasks.State() // the tasks; the goal's own events may move last_seq on
	require.Equal(t, live.Tasks, replayed.State.Tasks)
	require.Equal(t, live.Queue, replayed.State.Queue)
	var events []string
	for _, e := range h.task(t, second).History {
		events = append(events, e.Event)
	}
	require.Equal(t, []string{"task.submitted", "task.waiting", "task.released", "task.assigned", "task.completed"}, events)
}

// TestGoalsAnswerWhatTheyAreAsked: a goal made without an id answers with
// the one it was given; a submit refused for its dependencies creates no
// goal; a waiting task past its deadline is cancelled, not dead-lettered
// (a retry would run it before its dependencies).
func TestGoalsAnswerWhatTheyAreAsked(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now()}
	h := startHubOpts(t, "", logsink.LevelDebug, hubOpts{now: clock.Now, paused: true}, func(cfg *config.Hub) {
		cfg.Agents.SweepInterval = 10 * time.Millisecond
	})
	code, out := h.post(t, "/api/goals", `{"title":"ship 1.0"}`, nil)
	require.Equal(t, 201, code, out)
	require.Regexp(t, `^goal-[0-9a-f]{16}$`, out["id"])
	require.Equal(t, "ship 1.0", out["title"])
	code, _ = h.post(t, "/api/tasks", `{"description":"x","goal_id":"never-made","depends_on":["task-0000000000000000"]}`, nil)
	require.Equal(t, 422, code)
	code, _ = h.do(t, http.MethodGet, "/api/goals/never-made", h.token, "")
	require.Equal(t, 404, code, "a refused submit makes no goal")

	first := h.submit(t, `{"description":"first"}`)
	due := clock.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)
	late := h.submit(t, fmt.Sprintf(`{"description":"late","depends_on":[%q],"complete_by":%q}`, first, due))
	clock.Advance(2 * time.Minute)
	got := h.waitStatus(t, late, domain.StatusCancelled)
	require.Equal(t, "overdue while waiting on its dependencies", got.History[len(got.History)-1].Detail)
}
