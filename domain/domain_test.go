package domain_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
)

// now is the decision time every decider test passes in.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func intPtr(n int) *int { return &n }

func timePtr(t time.Time) *time.Time { return &t }

// deepCopy returns a copy of t that shares no memory with it.
func deepCopy(t *domain.Task) *domain.Task {
	if t == nil {
		return nil
	}
	c := *t
	c.Metadata = bytes.Clone(t.Metadata)
	c.NeededCapabilities = slices.Clone(t.NeededCapabilities)
	c.Result = bytes.Clone(t.Result)
	c.History = slices.Clone(t.History)
	if t.CompleteBy != nil {
		c.CompleteBy = timePtr(*t.CompleteBy)
	}
	if t.AssignedAt != nil {
		c.AssignedAt = timePtr(*t.AssignedAt)
	}
	return &c
}

// held is a task with the given status, held by agent a1 under generation 3.
func held(status domain.Status) *domain.Task {
	return &domain.Task{
		ID:           "task-1",
		Description:  "do it",
		Priority:     domain.PriorityNormal,
		MaxRetries:   3,
		MaxReclaims:  5,
		Status:       status,
		Generation:   3,
		AssignedTo:   "a1",
		AssignedAt:   timePtr(now.Add(-time.Minute)),
		CreatedAt:    now.Add(-time.Hour),
		UpdatedAt:    now.Add(-time.Minute),
		RetryCount:   1,
		ReclaimCount: 1,
		History:      []domain.HistoryEntry{{Event: domain.TypeTaskSubmitted, At: now.Add(-time.Hour)}},
	}
}

// decide runs cmd against a deep copy check: Decide must not change t.
func decide(t *testing.T, cmd domain.Command, task *domain.Task) ([]domain.Event, error) {
	t.Helper()
	before := deepCopy(task)
	evs, err := cmd.Decide(task, now)
	require.Equal(t, before, task, "Decide changed its input task")
	if err != nil {
		require.Nil(t, evs, "a refused command returns no events")
	}
	return evs, err
}

func requireFields(t *testing.T, err error, want ...domain.FieldError) {
	t.Helper()
	require.ErrorIs(t, err, domain.ErrValidation)
	var v *domain.ValidationError
	require.ErrorAs(t, err, &v)
	got := make([]domain.FieldError, len(v.Fields))
	for i, f := range v.Fields {
		require.NotEmpty(t, f.Detail, "field %s has no detail", f.Field)
		got[i] = domain.FieldError{Field: f.Field, Error: f.Error}
	}
	require.Equal(t, want, got)
}

func fe(field, code string) domain.FieldError { return domain.FieldError{Field: field, Error: code} }

func TestSubmitTaskDecideHappyPath(t *testing.T) {
	t.Parallel()
	cb := now.Add(time.Hour)
	caps := []string{"go", "docker", "go", "bash", "docker"}
	cmd := domain.SubmitTask{
		ID:                 "task-1",
		Description:        "build the thing",
		Priority:           domain.PriorityHigh,
		Metadata:           json.RawMessage(`{"k":1}`),
		NeededCapabilities: caps,
		MaxRetries:         intPtr(7),
		CompleteBy:         &cb,
		SubmittedBy:        "alice",
	}
	require.Equal(t, "task-1", cmd.TaskID())
	evs, err := decide(t, cmd, nil)
	require.NoError(t, err)
	require.Equal(t, []domain.Event{domain.TaskSubmitted{
		Description:        "build the thing",
		Priority:           domain.PriorityHigh,
		Metadata:           json.RawMessage(`{"k":1}`),
		NeededCapabilities: []string{"bash", "docker", "go"},
		MaxRetries:         7,
		MaxReclaims:        domain.DefaultMaxReclaims,
		CompleteBy:         &cb,
		SubmittedBy:        "alice",
	}}, evs)
	require.Equal(t, []string{"go", "docker", "go", "bash", "docker"}, caps, "Decide must not sort the caller's slice")
}

func TestSubmitTaskDecideDefaultsAndBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		maxRetries  *int
		wantRetries int32
	}{
		{"default", nil, 3},
		{"zero", intPtr(0), 0},
		{"limit", intPtr(100), 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			evs, err := decide(t, domain.SubmitTask{ID: "t", Description: "x", Priority: domain.PriorityLow, MaxRetries: tc.maxRetries}, nil)
			require.NoError(t, err)
			require.Equal(t, []domain.Event{domain.TaskSubmitted{
				Description: "x", Priority: domain.PriorityLow, MaxRetries: tc.wantRetries, MaxReclaims: 5,
			}}, evs)
		})
	}
}

func TestSubmitTaskAcceptsLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cmd  domain.SubmitTask
	}{
		{"10000 multibyte runes", domain.SubmitTask{Description: strings.Repeat("é", 10000)}},
		{"10000 four-byte runes", domain.SubmitTask{Description: strings.Repeat("😀", 10000)}},
		{"metadata exactly 64 KiB", domain.SubmitTask{Description: "x", Metadata: json.RawMessage(`"` + strings.Repeat("m", 64<<10-2) + `"`)}},
		{"complete_by one nanosecond ahead", domain.SubmitTask{Description: "x", CompleteBy: timePtr(now.Add(time.Nanosecond))}},
		{"capability of 128 bytes", domain.SubmitTask{Description: "x", NeededCapabilities: []string{strings.Repeat("c", 128)}}},
		{"32 capabilities", domain.SubmitTask{Description: "x", NeededCapabilities: make32()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, tc.cmd.Validate(now))
			evs, err := decide(t, tc.cmd, nil)
			require.NoError(t, err)
			require.Len(t, evs, 1)
		})
	}
}

func make32() []string {
	out := make([]string, 32)
	for i := range out {
		out[i] = fmt.Sprintf("cap-%02d", i)
	}
	return out
}

func TestSubmitTaskValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cmd  domain.SubmitTask
		want []domain.FieldError
	}{
		{"missing description", domain.SubmitTask{}, []domain.FieldError{fe("description", "required")}},
		{"blank description", domain.SubmitTask{Description: " \t\n "}, []domain.FieldError{fe("description", "required")}},
		{"description of 10001 runes", domain.SubmitTask{Description: strings.Repeat("é", 10001)}, []domain.FieldError{fe("description", "too_long")}},
		{"description of 10001 ascii", domain.SubmitTask{Description: strings.Repeat("a", 10001)}, []domain.FieldError{fe("description", "too_long")}},
		{"description not utf-8", domain.SubmitTask{Description: "ok\xff"}, []domain.FieldError{fe("description", "invalid")}},
		{"priority above low", domain.SubmitTask{Description: "x", Priority: domain.Priority(4)}, []domain.FieldError{fe("priority", "invalid")}},
		{"priority negative", domain.SubmitTask{Description: "x", Priority: domain.Priority(-1)}, []domain.FieldError{fe("priority", "invalid")}},
		{"max_retries -1", domain.SubmitTask{Description: "x", MaxRetries: intPtr(-1)}, []domain.FieldError{fe("max_retries", "out_of_range")}},
		{"max_retries 101", domain.SubmitTask{Description: "x", MaxRetries: intPtr(101)}, []domain.FieldError{fe("max_retries", "out_of_range")}},
		{"complete_by in the past", domain.SubmitTask{Description: "x", CompleteBy: timePtr(now.Add(-time.Second))}, []domain.FieldError{fe("complete_by", "invalid")}},
		{"complete_by now", domain.SubmitTask{Description: "x", CompleteBy: timePtr(now)}, []domain.FieldError{fe("complete_by", "invalid")}},
		{"metadata over 64 KiB", domain.SubmitTask{Description: "x", Metadata: json.RawMessage(`"` + strings.Repeat("m", 64<<10-1) + `"`)}, []domain.FieldError{fe("metadata", "too_long")}},
		{"blank capabilities", domain.SubmitTask{Description: "x", NeededCapabilities: []string{"go", " ", ""}}, []domain.FieldError{fe("needed_capabilities[1]", "required"), fe("needed_capabilities[2]", "required")}},
		{"capability of 129 bytes", domain.SubmitTask{Description: "x", NeededCapabilities: []string{"go", strings.Repeat("c", 129)}}, []domain.FieldError{fe("needed_capabilities[1]", "too_long")}},
		{"33 capabilities", domain.SubmitTask{Description: "x", NeededCapabilities: append(make32(), "one-more")}, []domain.FieldError{fe("needed_capabilities", "too_long")}},
		{
			"every problem at once",
			domain.SubmitTask{
				Description:        "",
				Priority:           domain.Priority(9),
				MaxRetries:         intPtr(101),
				CompleteBy:         timePtr(now.Add(-time.Hour)),
				Metadata:           json.RawMessage(strings.Repeat(" ", 64<<10+1)),
				NeededCapabilities: []string{"\t"},
			},
			[]domain.FieldError{
				fe("description", "required"), fe("priority", "invalid"), fe("max_retries", "out_of_range"),
				fe("complete_by", "invalid"), fe("metadata", "too_long"), fe("needed_capabilities[0]", "required"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cmd.ID = "task-1"
			requireFields(t, tc.cmd.Validate(now), tc.want...)
			_, err := decide(t, tc.cmd, nil)
			requireFields(t, err, tc.want...)
		})
	}
}

func TestSubmitTaskOnExistingTaskIsStateError(t *testing.T) {
	t.Parallel()
	for _, st := range domain.Statuses {
		t.Run(string(st), func(t *testing.T) {
			t.Parallel()
			_, err := decide(t, domain.SubmitTask{ID: "task-1", Description: "x"}, held(st))
			require.ErrorIs(t, err, domain.ErrInvalidState)
			var se *domain.StateError
			require.ErrorAs(t, err, &se)
			require.Equal(t, &domain.StateError{TaskID: "task-1", Status: st, Command: "submit"}, se)
		})
	}
}

// commandCase builds a command for task-1 reported by agent under gen.
type commandCase struct {
	name    string // the verb the StateError names
	make    func(agent string, gen uint64) domain.Command
	allowed []domain.Status
	fenced  bool // checks generation and agent
}

var (
	active   = []domain.Status{domain.StatusAssigned, domain.StatusWorking}
	commands = []commandCase{
		{
			name:    "assign",
			make:    func(a string, _ uint64) domain.Command { return domain.AssignTask{ID: "task-1", AgentID: a} },
			allowed: []domain.Status{domain.StatusQueued},
		},
		{
			name: "accept",
			make: func(a string, g uint64) domain.Command {
				return domain.AcceptTask{ID: "task-1", AgentID: a, Generation: g}
			},
			allowed: []domain.Status{domain.StatusAssigned},
			fenced:  true,
		},
		{
			name: "report progress on",
			make: func(a string, g uint64) domain.Command {
				return domain.ReportProgress{ID: "task-1", AgentID: a, Generation: g, Message: "50%"}
			},
			allowed: active,
			fenced:  true,
		},
		{
			name: "complete",
			make: func(a string, g uint64) domain.Command {
				return domain.CompleteTask{ID: "task-1", AgentID: a, Generation: g, Result: json.RawMessage(`{"ok":true}`)}
			},
			allowed: active,
			fenced:  true,
		},
		{
			name: "fail",
			make: func(a string, g uint64) domain.Command {
				return domain.FailTask{ID: "task-1", AgentID: a, Generation: g, Error: "boom"}
			},
			allowed: active,
			fenced:  true,
		},
		{
			name:    "reclaim",
			make:    func(string, uint64) domain.Command { return domain.ReclaimTask{ID: "task-1", Reason: "agent_gone"} },
			allowed: active,
		},
		{
			name:    "cancel",
			make:    func(string, uint64) domain.Command { return domain.CancelTask{ID: "task-1", By: "ops", Reason: "no"} },
			allowed: []domain.Status{domain.StatusWaiting, domain.StatusQueued, domain.StatusAssigned, domain.StatusWorking, domain.StatusDeadLetter},
		},
		{
			name:    "retry",
			make:    func(string, uint64) domain.Command { return domain.RetryTask{ID: "task-1", By: "ops"} },
			allowed: []domain.Status{domain.StatusDeadLetter},
		},
	}
)

func TestCommandsTaskID(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, "task-1", c.make("a1", 3).TaskID())
		})
	}
}

func TestCommandsOnMissingTaskAreNotFound(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := decide(t, c.make("a1", 3), nil)
			require.ErrorIs(t, err, domain.ErrNotFound)
			require.NotErrorIs(t, err, domain.ErrInvalidState)
			var nf *domain.NotFoundError
			require.ErrorAs(t, err, &nf)
			require.Equal(t, &domain.NotFoundError{TaskID: "task-1"}, nf)
		})
	}
}

func TestCommandsStatusMatrix(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		for _, st := range domain.Statuses {
			t.Run(c.name+"/"+string(st), func(t *testing.T) {
				t.Parallel()
				evs, err := decide(t, c.make("a1", 3), held(st))
				if c.name == "accept" && st == domain.StatusWorking {
					// Accepting again what was accepted is a no-op, not an error.
					require.NoError(t, err)
					require.Empty(t, evs)
					return
				}
				if slices.Contains(c.allowed, st) {
					require.NoError(t, err)
					require.NotEmpty(t, evs)
					return
				}
				require.ErrorIs(t, err, domain.ErrInvalidState)
				require.NotErrorIs(t, err, domain.ErrNotFound)
				var se *domain.StateError
				require.ErrorAs(t, err, &se)
				require.Equal(t, &domain.StateError{TaskID: "task-1", Status: st, Command: c.name}, se)
			})
		}
	}
}

func TestFencedCommandsRejectStaleGenerationAndWrongAgent(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		if !c.fenced {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			status := c.allowed[0]
			for _, gen := range []uint64{0, 2, 4} {
				_, err := decide(t, c.make("a1", gen), held(status))
				require.ErrorIs(t, err, domain.ErrStaleGeneration)
				require.NotErrorIs(t, err, domain.ErrWrongAgent)
				var sg *domain.StaleGenerationError
				require.ErrorAs(t, err, &sg)
				require.Equal(t, &domain.StaleGenerationError{TaskID: "task-1", Got: gen, Current: 3}, sg)
			}

			_, err := decide(t, c.make("a2", 3), held(status))
			require.ErrorIs(t, err, domain.ErrWrongAgent)
			require.NotErrorIs(t, err, domain.ErrStaleGeneration)
			var wa *domain.WrongAgentError
			require.ErrorAs(t, err, &wa)
			require.Equal(t, &domain.WrongAgentError{TaskID: "task-1", Got: "a2", Holder: "a1"}, wa)

			// A stale report from another agent is stale first.
			_, err = decide(t, c.make("a2", 2), held(status))
			require.ErrorIs(t, err, domain.ErrStaleGeneration)

			// A report on a finished task is a state error, whatever it names.
			_, err = decide(t, c.make("a2", 2), held(domain.StatusCompleted))
			require.ErrorIs(t, err, domain.ErrInvalidState)
		})
	}
}

func TestAssignTaskDecide(t *testing.T) {
	t.Parallel()
	task := held(domain.StatusQueued)
	task.AssignedTo, task.AssignedAt = "", nil
	task.Generation = 4

	evs, err := decide(t, domain.AssignTask{ID: "task-1", AgentID: "a7"}, task)
	require.NoError(t, err)
	require.Equal(t, []domain.Event{domain.TaskAssigned{AgentID: "a7", Generation: 5}}, evs)

	_, err = decide(t, domain.AssignTask{ID: "task-1"}, task)
	requireFields(t, err, fe("agent_id", "required"))
}

func TestAcceptTaskDecide(t *testing.T) {
	t.Parallel()
	evs, err := decide(t, domain.AcceptTask{ID: "task-1", AgentID: "a1", Generation: 3}, held(domain.StatusAssigned))
	require.NoError(t, err)
	require.Equal(t, []domain.Event{domain.TaskAccepted{AgentID: "a1", Generation: 3}}, evs)
}

func TestReportProgressDecide(t *testing.T) {
	t.Parallel()
	exact := strings.Repeat("x", 2000)
	tests := []struct {
		name    string
		status  domain.Status
		message string
		want    string
	}{
		{"assigned", domain.StatusAssigned, "starting", "starting"},
		{"working", domain.StatusWorking, "50%", "50%"},
		{"empty message", domain.StatusWorking, "", ""},
		{"2000 bytes kept", domain.StatusWorking, exact, exact},
		{"2001 ascii bytes cut", domain.StatusWorking, exact + "y", exact},
		{"cut on rune boundary", domain.StatusWorking, strings.Repeat("x", 1999) + "é", strings.Repeat("x", 1999)},
		{"cut before a 4-byte rune", domain.StatusWorking, strings.Repeat("x", 1998) + "😀", strings.Repeat("x", 1998)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			evs, err := decide(t, domain.ReportProgress{ID: "task-1", AgentID: "a1", Generation: 3, Message: tc.message}, held(tc.status))
			require.NoError(t, err)
			require.Equal(t, []domain.Event{domain.TaskProgressed{AgentID: "a1", Generation: 3, Message: tc.want}}, evs)
		})
	}
}

func TestCompleteTaskDecide(t *testing.T) {
	t.Parallel()
	for _, st := range []domain.Status{domain.StatusAssigned, domain.StatusWorking} {
		t.Run(string(st), func(t *testing.T) {
			t.Parallel()
			evs, err := decide(t, domain.CompleteTask{ID: "task-1", AgentID: "a1", Generation: 3, Result: json.RawMessage(`{"n":42}`)}, held(st))
			require.NoError(t, err)
			require.Equal(t, []domain.Event{domain.TaskCompleted{AgentID: "a1", Generation: 3, Result: json.RawMessage(`{"n":42}`)}}, evs)
		})
	}
}

func TestFailTaskDecide(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("e", 1999) + "ü"
	tests := []struct {
		name       string
		retryCount int32
		maxRetries int32
		err        string
		want       []domain.Event
	}{
		{"first failure of three", 0, 3, "boom", []domain.Event{
			domain.TaskFailed{AgentID: "a1", Generation: 3, Error: "boom", RetryCount: 1},
			domain.TaskRetried{Generation: 4},
		}},
		{"second failure of three", 1, 3, "boom", []domain.Event{
			domain.TaskFailed{AgentID: "a1", Generation: 3, Error: "boom", RetryCount: 2},
			domain.TaskRetried{Generation: 4},
		}},
		{"third failure of three", 2, 3, "boom", []domain.Event{
			domain.TaskFailed{AgentID: "a1", Generation: 3, Error: "boom", RetryCount: 3},
			domain.TaskDeadLettered{Reason: "max_retries"},
		}},
		{"already over the limit", 5, 3, "boom", []domain.Event{
			domain.TaskFailed{AgentID: "a1", Generation: 3, Error: "boom", RetryCount: 6},
			domain.TaskDeadLettered{Reason: "max_retries"},
		}},
		{"max_retries 0", 0, 0, "boom", []domain.Event{
			domain.TaskFailed{AgentID: "a1", Generation: 3, Error: "boom", RetryCount: 1},
			domain.TaskDeadLettered{Reason: "max_retries"},
		}},
		{"max_retries 1", 0, 1, "boom", []domain.Event{
			domain.TaskFailed{AgentID: "a1", Generation: 3, Error: "boom", RetryCount: 1},
			domain.TaskDeadLettered{Reason: "max_retries"},
		}},
		{"max_retries 2 first failure", 0, 2, "boom", []domain.Event{
			domain.TaskFailed{AgentID: "a1", Generation: 3, Error: "boom", RetryCount: 1},
			domain.TaskRetried{Generation: 4},
		}},
		{"error truncated on rune boundary", 0, 3, long, []domain.Event{
			domain.TaskFailed{AgentID: "a1", Generation: 3, Error: strings.Repeat("e", 1999), RetryCount: 1},
			domain.TaskRetried{Generation: 4},
		}},
	}
	for _, tc := range tests {
		for _, st := range []domain.Status{domain.StatusAssigned, domain.StatusWorking} {
			t.Run(tc.name+"/"+string(st), func(t *testing.T) {
				t.Parallel()
				task := held(st)
				task.RetryCount, task.MaxRetries = tc.retryCount, tc.maxRetries
				evs, err := decide(t, domain.FailTask{ID: "task-1", AgentID: "a1", Generation: 3, Error: tc.err}, task)
				require.NoError(t, err)
				require.Equal(t, tc.want, evs)
			})
		}
	}
}

func TestReclaimTaskDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		reclaimCount int32
		maxReclaims  int32
		want         []domain.Event
	}{
		{"first reclaim", 0, 5, []domain.Event{
			domain.TaskReclaimed{AgentID: "a1", Reason: "agent_gone", Generation: 4, ReclaimCount: 1},
		}},
		{"reaching max_reclaims", 4, 5, []domain.Event{
			domain.TaskReclaimed{AgentID: "a1", Reason: "agent_gone", Generation: 4, ReclaimCount: 5},
		}},
		{"past max_reclaims", 5, 5, []domain.Event{
			domain.TaskReclaimed{AgentID: "a1", Reason: "agent_gone", Generation: 4, ReclaimCount: 6},
			domain.TaskDeadLettered{Reason: "max_reclaims"},
		}},
		{"max_reclaims 0", 0, 0, []domain.Event{
			domain.TaskReclaimed{AgentID: "a1", Reason: "agent_gone", Generation: 4, ReclaimCount: 1},
			domain.TaskDeadLettered{Reason: "max_reclaims"},
		}},
	}
	for _, tc := range tests {
		for _, st := range []domain.Status{domain.StatusAssigned, domain.StatusWorking} {
			t.Run(tc.name+"/"+string(st), func(t *testing.T) {
				t.Parallel()
				task := held(st)
				task.ReclaimCount, task.MaxReclaims = tc.reclaimCount, tc.maxReclaims
				evs, err := decide(t, domain.ReclaimTask{ID: "task-1", Reason: "agent_gone"}, task)
				require.NoError(t, err)
				require.Equal(t, tc.want, evs)
			})
		}
	}
}

func TestCancelTaskDecide(t *testing.T) {
	t.Parallel()
	for _, st := range []domain.Status{domain.StatusQueued, domain.StatusAssigned, domain.StatusWorking, domain.StatusDeadLetter} {
		t.Run(string(st), func(t *testing.T) {
			t.Parallel()
			evs, err := decide(t, domain.CancelTask{ID: "task-1", By: "ops", Reason: "not needed"}, held(st))
			require.NoError(t, err)
			require.Equal(t, []domain.Event{domain.TaskCancelled{By: "ops", Reason: "not needed"}}, evs)

			evs, err = decide(t, domain.CancelTask{ID: "task-1", By: "ops", Reason: strings.Repeat("r", 2001)}, held(st))
			require.NoError(t, err)
			require.Equal(t, []domain.Event{domain.TaskCancelled{By: "ops", Reason: strings.Repeat("r", 2000)}}, evs)
		})
	}
}

func TestRetryTaskDecide(t *testing.T) {
	t.Parallel()
	task := held(domain.StatusDeadLetter)
	task.Generation = 9
	evs, err := decide(t, domain.RetryTask{ID: "task-1", By: "ops"}, task)
	require.NoError(t, err)
	require.Equal(t, []domain.Event{domain.TaskRequeued{By: "ops", Generation: 10}}, evs)
}

func TestErrorMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{&domain.NotFoundError{TaskID: "t1"}, "task t1 not found"},
		{&domain.StateError{TaskID: "t1", Status: domain.StatusCompleted, Command: "fail"}, "cannot fail task t1: it is completed"},
		{&domain.StaleGenerationError{TaskID: "t1", Got: 2, Current: 3}, "task t1: generation 2 is stale, current is 3"},
		{&domain.WrongAgentError{TaskID: "t1", Got: "a2", Holder: "a1"}, `task t1 is held by "a1", not "a2"`},
		{&domain.ValidationError{Fields: []domain.FieldError{{Field: "a", Error: "required", Detail: "a is required"}, {Field: "b", Error: "invalid", Detail: "b is bad"}}},
			"validation failed: a: a is required; b: b is bad"},
		{&domain.UnknownEventError{Type: "task.x"}, `unknown event type "task.x"`},
		{&domain.UnknownEventError{Type: "task.assigned", Version: 2}, "event task.assigned has schema version 2, newer than this build knows"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			require.EqualError(t, tc.err, tc.want)
		})
	}
}

func TestValidationErrorErr(t *testing.T) {
	t.Parallel()
	v := &domain.ValidationError{}
	require.NoError(t, v.Err())
	v.Add("x", "required", "x is required")
	require.Same(t, v, v.Err())
	require.Equal(t, []domain.FieldError{{Field: "x", Error: "required", Detail: "x is required"}}, v.Fields)
}

// TestLifecycle drives one task through deciders and Evolve, checking the
// generation fence at each step.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	var task *domain.Task
	at := now
	run := func(cmd domain.Command) []domain.Event {
		t.Helper()
		evs, err := decide(t, cmd, task)
		require.NoError(t, err)
		for _, e := range evs {
			at = at.Add(time.Second)
			task = domain.Evolve(task, domain.Envelope{ID: "e", Type: e.EventType(), Version: e.SchemaVersion(), Time: at, Aggregate: "task-1", Data: e})
		}
		return evs
	}

	run(domain.SubmitTask{ID: "task-1", Description: "x", Priority: domain.PriorityNormal, MaxRetries: intPtr(2)})
	require.Equal(t, domain.StatusQueued, task.Status)
	require.Equal(t, uint64(0), task.Generation)

	run(domain.AssignTask{ID: "task-1", AgentID: "a1"})
	run(domain.AcceptTask{ID: "task-1", AgentID: "a1", Generation: 1})
	run(domain.ReportProgress{ID: "task-1", AgentID: "a1", Generation: 1, Message: "half"})
	require.Equal(t, []domain.Event{
		domain.TaskFailed{AgentID: "a1", Generation: 1, Error: "e1", RetryCount: 1},
		domain.TaskRetried{Generation: 2},
	}, run(domain.FailTask{ID: "task-1", AgentID: "a1", Generation: 1, Error: "e1"}))

	// The old assignment's reports are now stale.
	_, err := domain.CompleteTask{ID: "task-1", AgentID: "a1", Generation: 1}.Decide(task, now)
	require.ErrorIs(t, err, domain.ErrInvalidState)

	run(domain.AssignTask{ID: "task-1", AgentID: "a2"})
	_, err = domain.CompleteTask{ID: "task-1", AgentID: "a1", Generation: 1}.Decide(task, now)
	require.ErrorIs(t, err, domain.ErrStaleGeneration)
	_, err = domain.CompleteTask{ID: "task-1", AgentID: "a1", Generation: 3}.Decide(task, now)
	require.ErrorIs(t, err, domain.ErrWrongAgent)

	run(domain.ReclaimTask{ID: "task-1", Reason: "no_heartbeat"})
	run(domain.AssignTask{ID: "task-1", AgentID: "a3"})
	require.Equal(t, []domain.Event{
		domain.TaskFailed{AgentID: "a3", Generation: 5, Error: "e2", RetryCount: 2},
		domain.TaskDeadLettered{Reason: "max_retries"},
	}, run(domain.FailTask{ID: "task-1", AgentID: "a3", Generation: 5, Error: "e2"}))
	require.Equal(t, domain.StatusDeadLetter, task.Status)

	run(domain.RetryTask{ID: "task-1", By: "ops"})
	require.Equal(t, domain.StatusQueued, task.Status)
	require.Equal(t, uint64(6), task.Generation)
	require.Equal(t, int32(0), task.RetryCount)
	require.Equal(t, int32(0), task.ReclaimCount)

	run(domain.AssignTask{ID: "task-1", AgentID: "a4"})
	run(domain.CompleteTask{ID: "task-1", AgentID: "a4", Generation: 7, Result: json.RawMessage(`"done"`)})
	require.Equal(t, domain.StatusCompleted, task.Status)
	require.Equal(t, json.RawMessage(`"done"`), task.Result)

	var events []string
	for _, h := range task.History {
		events = append(events, h.Event)
	}
	require.Equal(t, []string{
		"task.submitted", "task.assigned", "task.accepted", "task.failed", "task.retried",
		"task.assigned", "task.reclaimed", "task.assigned", "task.failed", "task.dead_lettered",
		"task.requeued", "task.assigned", "task.completed",
	}, events)
	require.Equal(t, at, task.UpdatedAt)
	require.Equal(t, now.Add(time.Second), task.CreatedAt)
}

// A hello's capabilities are checked by the same rule as a task's needed
// capabilities, and errors name the hello's own field.
func TestConnectAgentNamesItsCapabilities(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("c", domain.MaxCapabilityLength+1)
	_, err := domain.ConnectAgent{ID: "a1", Session: "s1", Capabilities: []string{"go", " ", long}}.
		DecideAgent(nil, time.Now())
	var v *domain.ValidationError
	require.ErrorAs(t, err, &v)
	require.Equal(t, []domain.FieldError{
		{Field: "capabilities[1]", Error: "required", Detail: "must not be blank"},
		{Field: "capabilities[2]", Error: "too_long", Detail: "129 bytes, at most 128"},
	}, v.Fields)
}

// A queued task's value is the projection's largest cost per task: it
// must stay in the 352-byte size class (docs/store.md). A new field goes
// behind a pointer with the rare ones, or takes the place of another.
func TestTaskValueFitsItsSizeClass(t *testing.T) {
	t.Parallel()
	require.LessOrEqual(t, unsafe.Sizeof(domain.Task{}), uintptr(352))
}
