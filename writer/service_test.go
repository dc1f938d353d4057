package writer_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/broker/brokertest"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/logsink"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/writer"
)

// waitFor bounds every wait on a condition.
const waitFor = 30 * time.Second

// harness is a running service over a real store and its projections.
type harness struct {
	store *broker.EventStore
	views *projections.Views
	svc   *writer.Service
}

// start runs a service with p's settings over a new embedded server; it
// is stopped when the test ends, before the server.
func start(t *testing.T, p writer.Params) *harness {
	t.Helper()
	b := brokertest.Start(t, 0)
	store, err := broker.OpenEventStore(t.Context(), b.Conn)
	require.NoError(t, err)
	views := projections.NewViews()
	p.Store, p.Views, p.Log = store, views, logsink.Nop()
	svc := writer.New(p)
	require.NoError(t, svc.Start(t.Context()))
	t.Cleanup(svc.Stop)
	return &harness{store: store, views: views, svc: svc}
}

// submit stores a new task and returns its id.
func (h *harness) submit(t *testing.T, desc string) string {
	t.Helper()
	id := writer.NewTaskID()
	_, err := h.svc.Execute(context.Background(), domain.SubmitTask{ID: id, Description: desc})
	require.NoError(t, err)
	return id
}

// connect brings an idle agent online.
func (h *harness) connect(t *testing.T, id string) {
	t.Helper()
	_, err := h.svc.ExecuteAgent(context.Background(), domain.ConnectAgent{ID: id, Session: "s-" + id})
	require.NoError(t, err)
}

// lastSeq is the store's last sequence.
func (h *harness) lastSeq(t *testing.T) uint64 {
	t.Helper()
	last, err := h.store.LastSeq(context.Background())
	require.NoError(t, err)
	return last
}

// together runs n calls at once (released together, so they meet in the
// writer's queue) and returns their errors by index.
func together(n int, call func(i int) error) []error {
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			errs[i] = call(i)
		})
	}
	close(gate)
	wg.Wait()
	return errs
}

func TestSubmitReturnsTheTaskAndProjectsIt(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	id := writer.NewTaskID()
	require.Regexp(t, regexp.MustCompile(`^task-[0-9a-f]{16}$`), id)
	ctx := logsink.WithRequestID(context.Background(), "req-submit")
	task, err := h.svc.Execute(ctx, domain.SubmitTask{ID: id, Description: "write tests", Priority: domain.PriorityHigh})
	require.NoError(t, err)
	require.Equal(t, id, task.ID)
	require.Equal(t, domain.StatusQueued, task.Status)
	require.Equal(t, "write tests", task.Description)
	require.Equal(t, domain.PriorityHigh, task.Priority)
	require.Equal(t, "req-submit", task.RequestID)

	got, seq, ok := h.views.Tasks.Get(id)
	require.True(t, ok, "the answered task is in the projection")
	require.Equal(t, task, got)
	require.Equal(t, h.lastSeq(t), seq, "its event is the store's last")
	require.Equal(t, writer.ServiceStats{Commits: 1, Commands: 1}, h.svc.Stats())
}

func TestCommandWithoutRequestIDGetsOne(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	task, err := h.svc.Execute(context.Background(), domain.SubmitTask{ID: writer.NewTaskID(), Description: "x"})
	require.NoError(t, err)
	require.NotEmpty(t, task.RequestID, "every command is traceable")
}

func TestConcurrentSubmitsShareGroupCommits(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	const round = 64
	var ids sync.Map
	deadline := time.Now().Add(waitFor)
	for sent := round; ; sent += round {
		errs := together(round, func(i int) error {
			id := writer.NewTaskID()
			_, err := h.svc.Execute(context.Background(), domain.SubmitTask{ID: id, Description: fmt.Sprint(i)})
			ids.Store(id, true)
			return err
		})
		for _, err := range errs {
			require.NoError(t, err)
		}
		stats := h.svc.Stats()
		require.Equal(t, uint64(sent), stats.Commands, "every stored command is counted")
		if grouped(h.svc) {
			require.Equal(t, uint64(sent), h.lastSeq(t), "one event per submit")
			require.Equal(t, sent, h.views.Tasks.Stats().Total)
			break
		}
		require.True(t, time.Now().Before(deadline), "no group carried two commands")
	}
	ids.Range(func(id, _ any) bool {
		_, _, ok := h.views.Tasks.Get(id.(string))
		require.True(t, ok, id)
		return true
	})
}

func TestRejectedCommandFailsAlone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		params writer.Params
	}{
		{"pipelined", writer.Params{}},
		{"atomic", writer.Params{SyncAlways: true, MinAtomic: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rejectedAmongValid(t, start(t, tc.params))
		})
	}
}

// rejectedAmongValid sends rounds of valid submits together with commands
// the domain refuses: each refused one gets its own error, the others are
// stored all the same.
func rejectedAmongValid(t *testing.T, h *harness) {
	existing := h.submit(t, "exists")
	cancelled := h.submit(t, "cancelled")
	_, err := h.svc.Execute(context.Background(), domain.CancelTask{ID: cancelled})
	require.NoError(t, err)
	before := h.lastSeq(t)
	rejected := []struct {
		cmd  domain.Command
		want error
	}{
		{domain.CancelTask{ID: "task-unknown"}, domain.ErrNotFound},
		{domain.CancelTask{ID: cancelled}, domain.ErrInvalidState},
		{domain.SubmitTask{ID: existing, Description: "again"}, domain.ErrInvalidState},
		{domain.SubmitTask{ID: writer.NewTaskID(), Description: "  "}, domain.ErrValidation},
	}
	const minRounds, valid = 8, 12
	rounds, deadline := 0, time.Now().Add(waitFor)
	for ; rounds < minRounds || !grouped(h.svc); rounds++ {
		require.True(t, time.Now().Before(deadline), "no group carried two commands")
		errs := together(valid+len(rejected), func(i int) error {
			if i < len(rejected) {
				_, err := h.svc.Execute(context.Background(), rejected[i].cmd)
				return err
			}
			_, err := h.svc.Execute(context.Background(), domain.SubmitTask{ID: writer.NewTaskID(), Description: "ok"})
			return err
		})
		for i, err := range errs {
			if i < len(rejected) {
				require.ErrorIs(t, err, rejected[i].want, "%T", rejected[i].cmd)
			} else {
				require.NoError(t, err)
			}
		}
	}
	var notFound *domain.NotFoundError
	_, err = h.svc.Execute(context.Background(), domain.CancelTask{ID: "task-unknown"})
	require.ErrorAs(t, err, &notFound)
	require.Equal(t, "task-unknown", notFound.TaskID)

	require.Equal(t, before+uint64(rounds*valid), h.lastSeq(t), "refused commands store nothing")
	require.Equal(t, 2+rounds*valid, h.views.Tasks.Stats().Total)
	existingTask, _, _ := h.views.Tasks.Get(existing)
	require.Equal(t, "exists", existingTask.Description, "a refused resubmit changes nothing")
	require.Equal(t, uint64(3+rounds*valid), h.svc.Stats().Commands, "only stored commands are counted")
}

// grouped reports whether some group carried more than one command.
func grouped(svc *writer.Service) bool {
	stats := svc.Stats()
	return stats.Commits < stats.Commands
}

func TestAssignHoldsItsAgentAgainstAgentCommands(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	groups := recordGroups(h.svc)
	const rounds = 40
	assigned := 0
	for r := range rounds {
		agent, task := fmt.Sprintf("agent-%d", r), h.submit(t, fmt.Sprint(r))
		h.connect(t, agent)
		errs := together(2, func(i int) error {
			if i == 0 {
				_, err := h.svc.Execute(context.Background(), domain.AssignTask{ID: task, AgentID: agent})
				return err
			}
			_, err := h.svc.ExecuteAgent(context.Background(), domain.FlagAgent{ID: agent, Reason: "race"})
			return err
		})
		require.NoError(t, errs[1], "a flag is never refused here")
		a, _, _ := h.views.Agents.Get(agent)
		require.True(t, a.Unresponsive)
		if errs[0] == nil { // assigned first, then flagged
			assigned++
			require.Equal(t, domain.StateAssigned, a.State)
			require.Equal(t, task, a.CurrentTask)
		} else { // flagged first: an unresponsive agent takes no task
			require.ErrorIs(t, errs[0], domain.ErrInvalidState)
			require.Equal(t, domain.StateIdle, a.State)
		}
		require.Zero(t, a.Invalid, agent)
	}
	t.Logf("%d of %d assigns won the race", assigned, rounds)
	requireApart(t, groups())
	requireAssignsValidOnReplay(t, h)
}

// recordGroups keeps every group OnApplied hands over; the returned
// function reads them.
func recordGroups(svc *writer.Service) func() []writer.Applied {
	var mu sync.Mutex
	var all []writer.Applied
	svc.OnApplied(func(a writer.Applied) {
		mu.Lock()
		defer mu.Unlock()
		all = append(all, a)
	})
	return func() []writer.Applied {
		mu.Lock()
		defer mu.Unlock()
		return append([]writer.Applied(nil), all...)
	}
}

// requireApart checks that no group held an assignment together with an
// event of the agent it names: an assignment holds its agent's key.
func requireApart(t *testing.T, groups []writer.Applied) {
	t.Helper()
	for _, g := range groups {
		agents := map[string]bool{}
		for _, env := range g.Events {
			if env.IsAgent() {
				agents[env.Aggregate] = true
			}
		}
		for _, env := range g.Events {
			if as, ok := env.Data.(domain.TaskAssigned); ok {
				require.False(t, agents[as.AgentID], "%s assigned in the group of an event of %s", env.Aggregate, as.AgentID)
			}
		}
	}
}

// requireAssignsValidOnReplay reads the stream from the start and checks
// each assignment against its agent's state just before it, and that the
// replay ends where the live projections are.
func requireAssignsValidOnReplay(t *testing.T, h *harness) {
	t.Helper()
	replay := projections.NewViews()
	err := h.store.Read(context.Background(), broker.ReadOpts{}, func(env domain.Envelope) error {
		if as, ok := env.Data.(domain.TaskAssigned); ok {
			a, _, _ := replay.Agents.Get(as.AgentID)
			task, _, _ := replay.Tasks.Get(env.Aggregate)
			if err := domain.CanAssign(a, as.AgentID, task, 0); err != nil {
				return fmt.Errorf("event %d: %w", env.Seq, err)
			}
		}
		return replay.Apply(env)
	})
	require.NoError(t, err)
	require.Equal(t, h.views.Agents.List(), replay.Agents.List())
	require.Equal(t, h.views.Tasks.State(), replay.Tasks.State())
}

func TestOnAppliedCarriesEachEventsState(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	applied := make(chan writer.Applied, 16)
	h.svc.OnApplied(func(a writer.Applied) { applied <- a }) // the test reads each at once
	ctx := context.Background()
	h.connect(t, "agent-1")
	require.Equal(t, domain.StateIdle, nextApplied(t, applied).Agents[0].State)

	id := writer.NewTaskID()
	task, err := h.svc.Execute(ctx, domain.SubmitTask{ID: id, Description: "x", MaxRetries: new(2)})
	require.NoError(t, err)
	a := nextApplied(t, applied)
	require.Len(t, a.Events, 1)
	require.Equal(t, id, a.Events[0].Aggregate)
	require.Equal(t, task, a.Tasks[0])
	require.Nil(t, a.Agents[0], "a task's event has no agent state")
	require.Equal(t, 1, a.QueueDepth)

	task, err = h.svc.Execute(ctx, domain.AssignTask{ID: id, AgentID: "agent-1"})
	require.NoError(t, err)
	a = nextApplied(t, applied)
	require.IsType(t, domain.TaskAssigned{}, a.Events[0].Data)
	require.Equal(t, task, a.Tasks[0])
	require.Zero(t, a.QueueDepth)

	task, err = h.svc.Execute(ctx, domain.FailTask{ID: id, AgentID: "agent-1", Generation: task.Generation, Error: "boom"})
	require.NoError(t, err)
	a = nextApplied(t, applied)
	require.Len(t, a.Events, 2, "failed, then retried")
	require.Less(t, a.Events[0].Seq, a.Events[1].Seq)
	require.Equal(t, domain.StatusQueued, task.Status)
	require.Equal(t, []*domain.Task{task, task}, a.Tasks, "both events leave the state after the group")
	require.Equal(t, 1, a.QueueDepth)
	got, _, _ := h.views.Tasks.Get(id)
	require.Equal(t, got, task)
}

func nextApplied(t *testing.T, ch <-chan writer.Applied) writer.Applied {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(waitFor):
		require.FailNow(t, "no group applied")
		return writer.Applied{}
	}
}

func TestOnAppliedMatchesTheProjectionUnderLoad(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	w := watchApplied(h)
	const workers, perWorker = 8, 12
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for n := range workers {
		wg.Go(func() { errs[n] = lifecycles(h.svc, fmt.Sprintf("agent-%d", n), perWorker) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	last := h.lastSeq(t)
	require.Eventually(t, func() bool { return w.lastSeq() == last }, waitFor, 10*time.Millisecond,
		"OnApplied saw every event")
	require.Empty(t, w.problems())
	require.Greater(t, w.groups(), 0)
	require.Less(t, uint64(w.groups()), h.svc.Stats().Commands, "groups carried several commands")
	// The events OnApplied gave, applied in order, make the same state.
	require.Equal(t, h.views.Tasks.State(), w.mirror.Tasks.State())
	require.Equal(t, h.views.Agents.List(), w.mirror.Agents.List())
}

// lifecycles runs tasks of one agent down several paths; the agent's
// commands follow one another, as its connection sends them.
func lifecycles(svc *writer.Service, agent string, n int) error {
	ctx := context.Background()
	if _, err := svc.ExecuteAgent(ctx, domain.ConnectAgent{ID: agent, Session: "s"}); err != nil {
		return fmt.Errorf("connect agent: %w", err)
	}
	for i := range n {
		id := writer.NewTaskID()
		if _, err := svc.Execute(ctx, domain.SubmitTask{ID: id, Description: fmt.Sprint(i)}); err != nil {
			return fmt.Errorf("submit task: %w", err)
		}
		if err := lifecycle(ctx, svc, id, agent, i%4); err != nil {
			return err
		}
	}
	return nil
}

func lifecycle(ctx context.Context, svc *writer.Service, id, agent string, path int) error {
	if path == 0 { // stays queued
		return nil
	}
	task, err := svc.Execute(ctx, domain.AssignTask{ID: id, AgentID: agent})
	if err != nil {
		return fmt.Errorf("assign task: %w", err)
	}
	if _, err := svc.Execute(ctx, domain.AcceptTask{ID: id, AgentID: agent, Generation: task.Generation}); err != nil {
		return fmt.Errorf("accept task: %w", err)
	}
	var end domain.Command = domain.CompleteTask{ID: id, AgentID: agent, Generation: task.Generation, Result: []byte(`"ok"`)}
	switch path {
	case 2:
		end = domain.FailTask{ID: id, AgentID: agent, Generation: task.Generation, Error: "boom"}
	case 3:
		end = domain.CancelTask{ID: id, By: "admin"}
	}
	if _, err := svc.Execute(ctx, end); err != nil {
		return fmt.Errorf("end task: %w", err)
	}
	return nil
}

// appliedWatch checks each group OnApplied hands over against the
// service's projections (which do not move during the call) and against a
// mirror fed only with the groups' events.
type appliedWatch struct {
	h      *harness
	mirror *projections.Views

	mu     sync.Mutex
	found  []string
	seen   int
	latest uint64
}

func watchApplied(h *harness) *appliedWatch {
	w := &appliedWatch{h: h, mirror: projections.NewViews()}
	h.svc.OnApplied(w.check)
	return w
}

func (w *appliedWatch) check(a writer.Applied) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen++
	if len(a.Tasks) != len(a.Events) || len(a.Agents) != len(a.Events) {
		w.found = append(w.found, fmt.Sprintf("%d events, %d tasks, %d agents", len(a.Events), len(a.Tasks), len(a.Agents)))
		return
	}
	if err := w.mirror.Apply(a.Events...); err != nil {
		w.found = append(w.found, err.Error())
		return
	}
	for i, env := range a.Events {
		w.checkEvent(env, a.Tasks[i], a.Agents[i])
		w.latest = env.Seq
	}
	if live, mirrored := w.h.views.Tasks.QueueDepth(), w.mirror.Tasks.QueueDepth(); a.QueueDepth != live || a.QueueDepth != mirrored {
		w.found = append(w.found, fmt.Sprintf("queue depth %d, projection %d, mirror %d", a.QueueDepth, live, mirrored))
	}
}

func (w *appliedWatch) checkEvent(env domain.Envelope, task *domain.Task, agent *domain.Agent) {
	var want, mirrored, got any
	if env.IsAgent() {
		want, _, _ = w.h.views.Agents.Get(env.Aggregate)
		mirrored, _, _ = w.mirror.Agents.Get(env.Aggregate)
		got = agent
		if task != nil {
			w.found = append(w.found, fmt.Sprintf("agent event %d has a task", env.Seq))
		}
	} else {
		want, _, _ = w.h.views.Tasks.Get(env.Aggregate)
		mirrored, _, _ = w.mirror.Tasks.Get(env.Aggregate)
		got = task
		if agent != nil {
			w.found = append(w.found, fmt.Sprintf("task event %d has an agent", env.Seq))
		}
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, mirrored) {
		w.found = append(w.found, fmt.Sprintf("event %d (%s of %s): state %+v, projection %+v", env.Seq, env.Type, env.Aggregate, got, want))
	}
}

func (w *appliedWatch) problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.found...)
}

func (w *appliedWatch) groups() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

func (w *appliedWatch) lastSeq() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

func TestStopFinishesTakenCommandsAndRefusesNew(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	const workers = 16
	stored := make([][]string, workers)
	ends := make([]error, workers)
	var wg sync.WaitGroup
	for n := range workers {
		wg.Go(func() { stored[n], ends[n] = submitUntilRefused(h.svc) })
	}
	require.Eventually(t, func() bool { return h.svc.Stats().Commands >= 100 }, waitFor, time.Millisecond)
	h.svc.Stop()
	// Stop has returned: whatever it took is stored and applied by now.
	total, last := h.views.Tasks.Stats().Total, h.lastSeq(t)
	wg.Wait()
	answered := 0
	for n := range workers {
		require.ErrorIs(t, ends[n], writer.ErrStopped)
		answered += len(stored[n])
		for _, id := range stored[n] {
			_, _, ok := h.views.Tasks.Get(id)
			require.True(t, ok, id)
		}
	}
	require.Equal(t, total, answered, "every command answered as stored was applied before Stop returned")
	require.Equal(t, uint64(answered), last, "and nothing refused was stored")

	_, err := h.svc.Execute(context.Background(), domain.SubmitTask{ID: writer.NewTaskID(), Description: "late"})
	require.ErrorIs(t, err, writer.ErrStopped)
	_, err = h.svc.ExecuteAgent(context.Background(), domain.ConnectAgent{ID: "late", Session: "s"})
	require.ErrorIs(t, err, writer.ErrStopped)
	h.svc.Stop() // a second Stop returns at once
}

// submitUntilRefused submits tasks one after another until one fails; it
// returns the stored ones and that failure.
func submitUntilRefused(svc *writer.Service) ([]string, error) {
	var ids []string
	for {
		id := writer.NewTaskID()
		if _, err := svc.Execute(context.Background(), domain.SubmitTask{ID: id, Description: "x"}); err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
}

func TestStopBeforeStartReturns(t *testing.T) {
	t.Parallel()
	b := brokertest.Start(t, 0)
	store, err := broker.OpenEventStore(t.Context(), b.Conn)
	require.NoError(t, err)
	svc := writer.New(writer.Params{Store: store, Views: projections.NewViews(), Log: logsink.Nop()})
	svc.Stop()
	require.False(t, svc.Started())
	_, err = svc.Execute(context.Background(), domain.SubmitTask{ID: writer.NewTaskID(), Description: "x"})
	require.ErrorIs(t, err, writer.ErrStopped)
}

func TestRefusalForLossGivesErrStoreLoss(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	id := h.submit(t, "before")
	lost := errors.New("events 5-7 are missing")
	h.svc.RefuseForLoss(lost)
	h.svc.RefuseForLoss(errors.New("a later reason")) // the first one stays
	require.Equal(t, lost, h.svc.Loss())

	_, err := h.svc.Execute(context.Background(), domain.CancelTask{ID: id})
	require.ErrorIs(t, err, writer.ErrStoreLoss)
	require.ErrorIs(t, err, lost)
	_, err = h.svc.ExecuteAgent(context.Background(), domain.ConnectAgent{ID: "agent-1", Session: "s"})
	require.ErrorIs(t, err, writer.ErrStoreLoss)
	require.Equal(t, uint64(1), h.lastSeq(t), "nothing stored after the refusal")
	task, _, _ := h.views.Tasks.Get(id)
	require.Equal(t, domain.StatusQueued, task.Status, "reads still serve what was stored")
}

func TestFullStoreRefusesUntilCleared(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	require.NoError(t, h.svc.StoreFull())
	require.True(t, h.store.MarkFull("volume nearly full"))
	require.ErrorIs(t, h.svc.StoreFull(), broker.ErrStoreFull)

	_, err := h.svc.Execute(context.Background(), domain.SubmitTask{ID: writer.NewTaskID(), Description: "x"})
	require.ErrorIs(t, err, broker.ErrStoreFull)
	require.NotErrorIs(t, err, writer.ErrStoreLoss, "a full store is not a loss")
	require.Zero(t, h.lastSeq(t))

	require.True(t, h.store.ClearFull())
	h.submit(t, "after")
	require.Equal(t, uint64(1), h.lastSeq(t))
}

// TestTaskCommandsHoldTheirHoldersAgent: a command on a held task (here a
// complete) changes its agent too, so it holds the agent's key: an agent
// command racing it (a block naming the task) is decided before or after
// it, never against the agent as it was. Either way the agent makes no
// invalid transition and each answer is the state the projection holds.
func TestTaskCommandsHoldTheirHoldersAgent(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	w := watchApplied(h)
	ctx := context.Background()
	for r := range 40 {
		agent, id := fmt.Sprintf("agent-%d", r), h.submit(t, fmt.Sprint(r))
		h.connect(t, agent)
		task, err := h.svc.Execute(ctx, domain.AssignTask{ID: id, AgentID: agent})
		require.NoError(t, err)
		_, err = h.svc.Execute(ctx, domain.AcceptTask{ID: id, AgentID: agent, Generation: task.Generation})
		require.NoError(t, err)
		errs := together(2, func(i int) error {
			if i == 0 {
				_, err := h.svc.Execute(ctx, domain.CompleteTask{ID: id, AgentID: agent, Generation: task.Generation, Result: []byte(`"ok"`)})
				return err
			}
			_, err := h.svc.ExecuteAgent(ctx, domain.BlockAgent{ID: agent, TaskID: id, Reason: "race"})
			return err
		})
		require.NoError(t, errs[0], "the complete is never refused here")
		a, _, _ := h.views.Agents.Get(agent)
		require.Zero(t, a.Invalid, "%s: blocked (%v) against the agent as it was", agent, errs[1])
		if errs[1] == nil { // blocked first, then completed
			require.Equal(t, domain.StateIdle, a.State)
		} else {
			require.ErrorIs(t, errs[1], domain.ErrInvalidState)
		}
	}
	require.Empty(t, w.problems())
}

// An agent with several slots takes assignments side by side, in one
// group, but never more than its free slots, however many race for them;
// its own commands still go alone, and the slots come free again.
func TestAssignsShareAnAgentUpToItsSlots(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	groups := recordGroups(h.svc)
	const slots, racing = 8, 12
	_, err := h.svc.ExecuteAgent(context.Background(), domain.ConnectAgent{ID: "a1", Session: "s1", MaxTasks: slots})
	require.NoError(t, err)
	deadline := time.Now().Add(waitFor)
	for round := 0; round < 3 || !sharedGroup(groups()); round++ {
		require.True(t, time.Now().Before(deadline), "no group carried two commands of one agent's tasks")
		tasks := make([]string, racing)
		for i := range tasks {
			tasks[i] = h.submit(t, fmt.Sprint(round, i))
		}
		errs := together(racing+1, func(i int) error {
			if i == racing {
				_, err := h.svc.ExecuteAgent(context.Background(), domain.FlagAgent{ID: "a1", Reason: "race"})
				if err == nil {
					_, err = h.svc.ExecuteAgent(context.Background(), domain.UnflagAgent{ID: "a1"})
				}
				return err
			}
			_, err := h.svc.Execute(context.Background(), domain.AssignTask{ID: tasks[i], AgentID: "a1"})
			return err
		})
		require.NoError(t, errs[racing])
		var won []string
		for i, err := range errs[:racing] {
			if err == nil {
				won = append(won, tasks[i])
			} else {
				require.ErrorIs(t, err, domain.ErrInvalidState)
			}
		}
		a, _, _ := h.views.Agents.Get("a1")
		require.LessOrEqual(t, len(won), slots)
		require.Len(t, a.Tasks, len(won))
		require.Zero(t, a.Invalid)
		completeAll(t, h, won)
	}
	requireApart(t, groups())
	requireAssignsValidOnReplay(t, h)
}

// completeAll completes held tasks side by side.
func completeAll(t *testing.T, h *harness, ids []string) {
	t.Helper()
	errs := together(len(ids), func(i int) error {
		task, _, _ := h.views.Tasks.Get(ids[i])
		_, err := h.svc.Execute(context.Background(), domain.CompleteTask{ID: ids[i], AgentID: task.AssignedTo,
			Generation: task.Generation})
		return err
	})
	for _, err := range errs {
		require.NoError(t, err)
	}
}

// sharedGroup reports whether some group held two events naming one agent.
func sharedGroup(groups []writer.Applied) bool {
	for _, g := range groups {
		seen := map[string]bool{}
		for _, env := range g.Events {
			var agent string
			switch e := env.Data.(type) {
			case domain.TaskAssigned:
				agent = e.AgentID
			case domain.TaskCompleted:
				agent = e.AgentID
			}
			if agent != "" && seen[agent] {
				return true
			}
			seen[agent] = agent != ""
		}
	}
	return false
}

// An assignment that has landed holds its slot in the agent's state; its
// reservation, freed a moment later, must not count it again: the next
// assignment to the agent's other slot goes through, however slow the
// reactors after the apply are.
func TestLandedAssignmentIsNotCountedTwice(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	h.svc.OnApplied(func(writer.Applied) { time.Sleep(200 * time.Microsecond) }) // as the hub's reactors take a moment
	_, err := h.svc.ExecuteAgent(context.Background(), domain.ConnectAgent{ID: "a1", Session: "s1", MaxTasks: 2})
	require.NoError(t, err)
	for round := range 30 {
		first, second := h.submit(t, fmt.Sprint(round, "a")), h.submit(t, fmt.Sprint(round, "b"))
		for _, id := range []string{first, second} {
			_, err := h.svc.Execute(context.Background(), domain.AssignTask{ID: id, AgentID: "a1"})
			require.NoError(t, err, "round %d: the agent has a free slot", round)
		}
		completeAll(t, h, []string{first, second})
	}
}

// An agent's own command is not starved by a stream of commands on its
// tasks: once it waits, the task commands behind it wait too, so it goes
// as soon as those in flight land.
func TestAgentCommandIsNotStarvedByItsTasks(t *testing.T) {
	t.Parallel()
	h := start(t, writer.Params{})
	const slots = 32
	_, err := h.svc.ExecuteAgent(context.Background(), domain.ConnectAgent{ID: "a1", Session: "s1", MaxTasks: slots})
	require.NoError(t, err)
	held := make([]*domain.Task, slots)
	for i := range held {
		held[i], err = h.svc.Execute(context.Background(), domain.AssignTask{ID: h.submit(t, fmt.Sprint(i)), AgentID: "a1"})
		require.NoError(t, err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, task := range held { // progress on every task, without a pause
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = h.svc.Execute(context.Background(), domain.ReportProgress{ID: task.ID, AgentID: "a1", Generation: task.Generation})
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := h.svc.ExecuteAgent(ctx, domain.FlagAgent{ID: "a1", Reason: "starved?"})
		if err == nil {
			_, err = h.svc.ExecuteAgent(ctx, domain.UnflagAgent{ID: "a1"})
		}
		cancel()
		require.NoError(t, err, "the agent's command waited behind its tasks' for 5 s")
	}
}
