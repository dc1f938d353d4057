package projections_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/projections"
)

// sim makes a random but valid event stream: random commands for random
// tasks and agents, decided by the domain against the views' own state
// (refused commands are skipped), so that every status, lane, flag and
// holder comes up.
type sim struct {
	t      *testing.T
	rng    *rand.Rand
	v      *projections.Views
	seq    uint64
	now    time.Time
	tasks  []string
	agents []string
	log    []domain.Envelope
}

func newSim(t *testing.T, seed uint64) *sim {
	return &sim{t: t, rng: rand.New(rand.NewPCG(seed, 11)), v: projections.NewViews(), now: start}
}

// run makes events until the stream has grown by n.
func (s *sim) run(n int) []domain.Envelope {
	s.t.Helper()
	from := len(s.log)
	for len(s.log)-from < n {
		s.step()
	}
	return s.log[from:]
}

func (s *sim) step() {
	s.t.Helper()
	if len(s.agents) < 5 || s.rng.IntN(8) == 0 {
		s.agentStep()
		return
	}
	if len(s.tasks) < 5 || s.rng.IntN(4) == 0 {
		id := fmt.Sprintf("t%03d", len(s.tasks))
		retries := s.rng.IntN(3)
		s.taskCmd(domain.SubmitTask{ID: id, Description: "task " + id, Priority: domain.Priority(s.rng.IntN(4)),
			MaxRetries: &retries, Metadata: []byte(`{"n":1}`), Flow: s.flow(), Open: s.open()})
		s.tasks = append(s.tasks, id)
		return
	}
	s.taskCmd(s.taskCommand(s.tasks[s.rng.IntN(len(s.tasks))]))
}

// flow ties some submits to a goal and to the task before.
func (s *sim) flow() domain.Workflow {
	if len(s.tasks) == 0 || s.rng.IntN(3) > 0 {
		return domain.Workflow{}
	}
	return domain.Workflow{DependsOn: []string{s.tasks[len(s.tasks)-1]}, GoalID: fmt.Sprintf("g%d", s.rng.IntN(3))}
}

// open makes the last flow's dependency open, so the task waits.
func (s *sim) open() []string {
	if len(s.tasks) == 0 {
		return nil
	}
	return []string{s.tasks[len(s.tasks)-1]}
}

// release settles a waiting task by its dependencies' states.
func (s *sim) release(id string) domain.Command {
	task, _, _ := s.v.Tasks.Get(id)
	var deps []domain.Dependency
	for _, d := range task.Deps() {
		dt, _, _ := s.v.Tasks.Get(d)
		deps = append(deps, domain.Dependency{ID: d, Status: dt.Status})
	}
	return domain.ReleaseTask{ID: id, Deps: deps}
}

// taskCommand picks a command for a task, from its current state.
func (s *sim) taskCommand(id string) domain.Command {
	task, _, _ := s.v.Tasks.Get(id)
	agent, gen := task.AssignedTo, task.Generation
	if task.Status == domain.StatusWaiting && s.rng.IntN(2) == 0 {
		return s.release(id)
	}
	switch s.rng.IntN(10) {
	case 0, 1:
		return domain.AssignTask{ID: id, AgentID: s.agents[s.rng.IntN(len(s.agents))]}
	case 2:
		return domain.AcceptTask{ID: id, AgentID: agent, Generation: gen}
	case 3:
		return domain.ReportProgress{ID: id, AgentID: agent, Generation: gen, Message: "half"}
	case 4:
		return domain.CompleteTask{ID: id, AgentID: agent, Generation: gen, Result: []byte(`"ok"`),
			Usage: &domain.Usage{InputTokens: int64(s.rng.IntN(100)), CostUSD: float64(s.rng.IntN(5)) / 100}}
	case 5:
		return domain.FailTask{ID: id, AgentID: agent, Generation: gen, Error: "boom"}
	case 6:
		return domain.ReclaimTask{ID: id, Reason: "agent_gone"}
	case 7:
		return domain.RetryTask{ID: id, By: "ops"}
	case 8:
		return domain.CancelTask{ID: id, By: "ops", Reason: "r"}
	}
	return domain.CompactTask{ID: id, Before: s.now.Add(time.Hour), Order: s.v.Tasks.Order(id)}
}

func (s *sim) agentStep() {
	if len(s.agents) < 5 || s.rng.IntN(6) == 0 {
		id := fmt.Sprintf("a%02d", s.rng.IntN(8))
		s.agentCmd(domain.ConnectAgent{ID: id, Name: id, Session: fmt.Sprintf("s%d", s.seq), Capabilities: []string{"go"}})
		if !containsString(s.agents, id) {
			s.agents = append(s.agents, id)
		}
		return
	}
	id := s.agents[s.rng.IntN(len(s.agents))]
	a, _, _ := s.v.Agents.Get(id)
	cmds := []domain.AgentCommand{
		domain.DisconnectAgent{ID: id, Reason: "closed"},
		domain.EvictAgent{ID: id, StaleMS: 1000},
		domain.FlagAgent{ID: id, Reason: "slow", TaskID: a.CurrentTask},
		domain.UnflagAgent{ID: id},
		domain.BlockAgent{ID: id, TaskID: a.CurrentTask, Reason: "waits"},
		domain.UnblockAgent{ID: id, TaskID: a.CurrentTask},
	}
	s.agentCmd(cmds[s.rng.IntN(len(cmds))])
}

func (s *sim) taskCmd(cmd domain.Command) {
	task, _, _ := s.v.Tasks.Get(cmd.TaskID())
	evs, err := cmd.Decide(task, s.now)
	if err == nil {
		s.emit(cmd.TaskID(), evs)
	}
}

func (s *sim) agentCmd(cmd domain.AgentCommand) {
	a, _, _ := s.v.Agents.Get(cmd.AgentID())
	evs, err := cmd.DecideAgent(a, s.now)
	if err == nil {
		s.emit(cmd.AgentID(), evs)
	}
}

// emit wraps events in envelopes, applies them and logs them.
func (s *sim) emit(aggregate string, evs []domain.Event) {
	s.t.Helper()
	envs := make([]domain.Envelope, len(evs))
	for i, e := range evs {
		s.seq += 1 + uint64(s.rng.IntN(2)) // gaps, as rollups leave
		s.now = s.now.Add(time.Second)
		envs[i] = domain.Envelope{ID: fmt.Sprintf("evt-%d", s.seq), Type: e.EventType(), Version: e.SchemaVersion(),
			Time: s.now, Aggregate: aggregate, RequestID: fmt.Sprintf("req-%d", s.seq), Data: e, Seq: s.seq}
	}
	require.NoError(s.t, s.v.Apply(envs...))
	s.log = append(s.log, envs...)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// requireSameViews compares everything a reader can see of two views.
func requireSameViews(t *testing.T, want, got *projections.Views) {
	t.Helper()
	require.Equal(t, want.Tasks.State(), got.Tasks.State())
	require.Equal(t, want.Tasks.Stats(), got.Tasks.Stats())
	require.Equal(t, want.Agents.List(), got.Agents.List())
	require.Equal(t, want.Agents.Available(), got.Agents.Available())
	require.Equal(t, want.LastSeq(), got.LastSeq())
	require.Equal(t, want.Agents.LastSeq(), got.Agents.LastSeq())
	require.Equal(t, want.Tasks.Usage("", "", ""), got.Tasks.Usage("", "", ""))
	require.Equal(t, want.Tasks.GoalIDs(), got.Tasks.GoalIDs())
	for _, g := range want.Tasks.GoalIDs() {
		require.Equal(t, want.Tasks.GoalTasks(g), got.Tasks.GoalTasks(g), g)
	}
	for _, task := range want.Tasks.State().Tasks {
		require.Equal(t, want.Tasks.Dependents(task.ID), got.Tasks.Dependents(task.ID), task.ID)
		wt, wseq, _ := want.Tasks.Get(task.ID)
		gt, gseq, ok := got.Tasks.Get(task.ID)
		require.True(t, ok, task.ID)
		require.Equal(t, wt, gt)
		require.Equal(t, wseq, gseq, task.ID)
		require.Equal(t, want.Tasks.Order(task.ID), got.Tasks.Order(task.ID), task.ID)
	}
	for _, a := range want.Agents.List() {
		_, wseq, _ := want.Agents.Get(a.ID)
		_, gseq, ok := got.Agents.Get(a.ID)
		require.True(t, ok, a.ID)
		require.Equal(t, wseq, gseq, a.ID)
	}
	for _, st := range domain.Statuses {
		require.Equal(t, want.Tasks.List(projections.Filter{Status: st}), got.Tasks.List(projections.Filter{Status: st}))
	}
}

// TestSnapshotRestoreThenApplyEqualsApplyingEverything: for many random
// streams, views restored from a snapshot taken midway, then fed the rest
// of the stream, equal the views fed the whole stream, at every step.
func TestSnapshotRestoreThenApplyEqualsApplyingEverything(t *testing.T) {
	t.Parallel()
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			s := newSim(t, seed)
			s.run(300 + int(seed)*20)
			b, err := s.v.Snapshot()
			require.NoError(t, err)
			restored, err := projections.ViewsFromSnapshot(b)
			require.NoError(t, err)
			requireSameViews(t, s.v, restored)

			more := s.run(300)
			for i := 0; i < len(more); i += 7 {
				batch := more[i:min(i+7, len(more))]
				require.NoError(t, restored.Apply(batch...))
			}
			requireSameViews(t, s.v, restored)
			whole := projections.NewViews()
			require.NoError(t, whole.Apply(s.log...))
			requireSameViews(t, whole, restored)
			// Including what readers cannot see (the task holders).
			want, err := whole.Snapshot()
			require.NoError(t, err)
			got, err := restored.Snapshot()
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
}

// TestSnapshotCoversEveryStatusAndHolder checks that the random streams
// reach what the equality test is meant to cover.
func TestSnapshotCoversEveryStatusAndHolder(t *testing.T) {
	t.Parallel()
	s := newSim(t, 3)
	s.run(2000)
	stats := s.v.Tasks.Stats()
	for _, st := range domain.Statuses {
		require.Positive(t, stats.ByStatus[string(st)], st)
	}
	states := map[domain.AgentState]bool{}
	for _, a := range s.v.Agents.List() {
		states[a.State] = true
	}
	require.GreaterOrEqual(t, len(states), 2)
	compacted := false
	for _, task := range s.v.Tasks.State().Tasks {
		compacted = compacted || task.Compacted
	}
	require.True(t, compacted)
}

func TestSnapshotIsDeterministic(t *testing.T) {
	t.Parallel()
	s := newSim(t, 5)
	s.run(500)
	first, err := s.v.Snapshot()
	require.NoError(t, err)
	second, err := s.v.Snapshot()
	require.NoError(t, err)
	require.Equal(t, first, second)

	// The same events applied one by one give the same bytes, and so does
	// a snapshot of the restored views.
	oneByOne := projections.NewViews()
	for _, env := range s.log {
		require.NoError(t, oneByOne.Apply(env))
	}
	again, err := oneByOne.Snapshot()
	require.NoError(t, err)
	require.Equal(t, first, again)
	restored, err := projections.ViewsFromSnapshot(first)
	require.NoError(t, err)
	third, err := restored.Snapshot()
	require.NoError(t, err)
	require.Equal(t, first, third)
}

func TestSnapshotOfEmptyViews(t *testing.T) {
	t.Parallel()
	b, err := projections.NewViews().Snapshot()
	require.NoError(t, err)
	v, err := projections.ViewsFromSnapshot(b)
	require.NoError(t, err)
	requireSameViews(t, projections.NewViews(), v)
	s := newSim(t, 9)
	s.run(100)
	require.NoError(t, v.Apply(s.log...))
	requireSameViews(t, s.v, v)
}

func TestViewsFromSnapshotRejectsBadInput(t *testing.T) {
	t.Parallel()
	s := newSim(t, 1)
	s.run(50)
	good, err := s.v.Snapshot()
	require.NoError(t, err)
	task := func(seq, order int, id, status string) string {
		return fmt.Sprintf(`{"seq":%d,"order":%d,"task":{"id":%q,"priority":"high","status":%q}}`, seq, order, id, status)
	}
	// doc frames a head and task chunks as Snapshot does.
	doc := func(head string, chunks ...string) string {
		out := head[:len(head)-1] + `,"tasks":[`
		for i, c := range chunks {
			out += "\n" + c
			if i < len(chunks)-1 {
				out += ","
			}
		}
		return out + "\n]}"
	}
	const head = `{"format":1,"last_seq":5,"agents":[],"holders":{}}`
	tests := []struct {
		name, body, want string
	}{
		{"not json", "{", "not a snapshot"},
		{"torn", string(good[:len(good)/2]), "cut short"},
		{"torn in a chunk", string(good[:len(good)-3]), "cut short"},
		{"other format", doc(`{"format":2,"last_seq":1}`), "format 2"},
		{"bad head", doc(`{"format":1,"last_seq":"x"}`), "decode snapshot"},
		{"bad chunk", doc(head, "[{]"), "task chunk 0"},
		{"chunk without comma", strings.Replace(doc(head, "[]", "[]"), "\n[],\n", "\n[]\n", 1), "comma"},
		{"task without id", doc(head, "["+task(1, 1, "", "queued")+"]"), "no task"},
		{"unknown status", doc(head, "["+task(1, 1, "x", "lost")+"]"), "unknown status"},
		{"seq after last", doc(head, "["+task(6, 1, "x", "queued")+"]"), "out of range"},
		{"duplicate task", doc(head, "["+task(1, 1, "x", "queued")+"]", "["+task(2, 2, "x", "queued")+"]"), "twice"},
		{"agent without id", doc(`{"format":1,"last_seq":5,"agents":[{"seq":1,"agent":{}}]}`), "no agent"},
		{"holder unknown", doc(`{"format":1,"last_seq":5,"holders":{"x":"ghost"}}`), "unknown agent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := projections.ViewsFromSnapshot([]byte(tc.body))
			require.Error(t, err)
			require.Nil(t, v)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestSnapshotWhileApplying takes snapshots while another goroutine
// applies events: each holds both projections at one sequence and equals
// the views built from the stream up to that sequence.
func TestSnapshotWhileApplying(t *testing.T) {
	t.Parallel()
	s := newSim(t, 4)
	s.run(600)
	live := projections.NewViews()
	var applyErr error
	done := make(chan struct{})
	// tick holds the applier back every 20 batches until one more
	// snapshot has been taken, so snapshots land in the middle of the
	// stream however the scheduler runs the two goroutines.
	tick := make(chan struct{}, 1)
	go func() {
		defer close(done)
		for i, n := 0, 0; i < len(s.log) && applyErr == nil; i, n = i+3, n+1 {
			if n%20 == 0 {
				<-tick
			}
			applyErr = live.Apply(s.log[i:min(i+3, len(s.log))]...)
		}
	}()
	var snaps [][]byte
	for applying := true; applying; {
		select {
		case <-done:
			applying = false
		default:
		}
		b, err := live.Snapshot()
		require.NoError(t, err)
		snaps = append(snaps, b)
		select {
		case tick <- struct{}{}:
		default:
		}
	}
	require.NoError(t, applyErr)
	require.Greater(t, len(snaps), len(s.log)/60)
	for _, b := range snaps {
		got, err := projections.ViewsFromSnapshot(b)
		require.NoError(t, err)
		want := projections.NewViews()
		for _, env := range s.log {
			if env.Seq > got.LastSeq() {
				break
			}
			require.NoError(t, want.Apply(env))
		}
		requireSameViews(t, want, got)
	}
}

// benchViews is views holding n submitted tasks, like the hub's startup
// benchmark's.
func benchViews(b *testing.B, n int) *projections.Views {
	b.Helper()
	v := projections.NewViews()
	now := start
	envs := make([]domain.Envelope, 0, n)
	for i := range n {
		id := fmt.Sprintf("task-%016x", i)
		cmd := domain.SubmitTask{ID: id, Description: "summarise the build log and open an issue for each new failure",
			Priority: domain.Priority(i % domain.PriorityCount), Metadata: []byte(`{"repo":"agentcom","branch":"main"}`),
			NeededCapabilities: []string{"go"}, SubmittedBy: "admin"}
		evs, err := cmd.Decide(nil, now)
		require.NoError(b, err)
		envs = append(envs, domain.Envelope{ID: fmt.Sprintf("evt-%d", i+1), Type: evs[0].EventType(), Version: 1, Time: now,
			Aggregate: id, RequestID: fmt.Sprintf("req-%d", i), Data: evs[0], Seq: uint64(i + 1)})
	}
	require.NoError(b, v.Apply(envs...))
	return v
}

// benchSnapshotTasks is how many tasks BenchmarkSnapshot's views hold.
const benchSnapshotTasks = 100_000

// BenchmarkSnapshot measures encoding and decoding the snapshot of
// benchSnapshotTasks queued tasks (per op: the whole snapshot).
func BenchmarkSnapshot(b *testing.B) {
	v := benchViews(b, benchSnapshotTasks)
	body, err := v.Snapshot()
	require.NoError(b, err)
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for range b.N {
			_, err := v.Snapshot()
			require.NoError(b, err)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for range b.N {
			_, err := projections.ViewsFromSnapshot(body)
			require.NoError(b, err)
		}
	})
}

// TestSnapshotIsOneJSONDocument: the chunked framing is still plain JSON,
// which any JSON tool reads, with the tasks in order.
func TestSnapshotIsOneJSONDocument(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 4096, 4097, 9000} {
		s := newSim(t, uint64(n))
		for s.v.Tasks.Stats().Total < n {
			s.run(100)
		}
		b, err := s.v.Snapshot()
		require.NoError(t, err)
		var doc struct {
			LastSeq uint64 `json:"last_seq"`
			Tasks   [][]struct {
				Task domain.Task `json:"task"`
			} `json:"tasks"`
		}
		require.NoError(t, json.Unmarshal(b, &doc))
		require.Equal(t, s.v.LastSeq(), doc.LastSeq)
		var count int
		for _, c := range doc.Tasks {
			require.LessOrEqual(t, len(c), 4096)
			count += len(c)
		}
		require.Equal(t, s.v.Tasks.Stats().Total, count)
		restored, err := projections.ViewsFromSnapshot(b)
		require.NoError(t, err)
		requireSameViews(t, s.v, restored)
	}
}

// BenchmarkListByStatus is the sweep's query (every 5 s): the tasks in one
// status, here none, among benchSnapshotTasks kept.
func BenchmarkListByStatus(b *testing.B) {
	v := benchViews(b, benchSnapshotTasks)
	for b.Loop() {
		require.Empty(b, v.Tasks.List(projections.Filter{Status: domain.StatusAssigned}))
	}
}

// BenchmarkViewsApply applies one event to the views per op: a progress
// heartbeat of a working task, the most frequent event there is.
func BenchmarkViewsApply(b *testing.B) {
	v := projections.NewViews()
	seq := uint64(0)
	env := func(agg string, e domain.Event) domain.Envelope {
		seq++
		return domain.Envelope{ID: fmt.Sprintf("evt-%d", seq), Type: e.EventType(), Version: e.SchemaVersion(),
			Time: start, Aggregate: agg, RequestID: "req-1", Data: e, Seq: seq}
	}
	require.NoError(b, v.Apply(
		env("a1", domain.AgentConnected{Name: "a1", Capabilities: []string{"go"}, Session: "s1"}),
		env("task-1", domain.TaskSubmitted{Description: "d", Priority: domain.PriorityNormal}),
		env("task-1", domain.TaskAssigned{AgentID: "a1", Generation: 1}),
		env("task-1", domain.TaskAccepted{AgentID: "a1", Generation: 1})))
	for b.Loop() {
		require.NoError(b, v.Apply(env("task-1", domain.TaskProgressed{AgentID: "a1", Generation: 1})))
	}
}

// The random streams report usage, so the snapshot tests cover it.
func TestSnapshotStreamsCarryUsage(t *testing.T) {
	t.Parallel()
	s := newSim(t, 1)
	s.run(600)
	rows := s.v.Tasks.Usage("", "", "")
	require.NotEmpty(t, rows)
	b, err := s.v.Snapshot()
	require.NoError(t, err)
	restored, err := projections.ViewsFromSnapshot(b)
	require.NoError(t, err)
	require.Equal(t, rows, restored.Tasks.Usage("", "", ""))
}
