package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
)

var envTime = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)

// samples holds one populated event per registered type.
func samples() map[string]domain.Event {
	cb := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return map[string]domain.Event{
		domain.TypeTaskSubmitted: domain.TaskSubmitted{
			Description: "d", Priority: domain.PriorityLow, Metadata: json.RawMessage(`{"a":[1,2]}`),
			NeededCapabilities: []string{"bash", "go"}, MaxRetries: 3, MaxReclaims: 5, CompleteBy: &cb, SubmittedBy: "alice",
			Workflow: &domain.Workflow{DependsOn: []string{"task-0"}, GoalID: "g1", IdempotencyKey: "k", Schedule: "s", Tick: &cb},
		},
		domain.TypeTaskWaiting:   domain.TaskWaiting{On: []string{"task-0"}},
		domain.TypeTaskReleased:  domain.TaskReleased{By: "task-0", Reason: "r"},
		domain.TypeGoalCreated:   domain.GoalCreated{Title: "ship", Description: "d", By: "ops"},
		domain.TypeGoalCompleted: domain.GoalCompleted{GoalSettled: domain.GoalSettled{Counts: map[domain.Status]int{"completed": 2}}},
		domain.TypeGoalFailed:    domain.GoalFailed{GoalSettled: domain.GoalSettled{Counts: map[domain.Status]int{"cancelled": 1}}},
		domain.TypeGoalCancelled: domain.GoalCancelled{By: "ops", Reason: "r"},
		domain.TypeGoalReopened:  domain.GoalReopened{TaskID: "task-9"},
		domain.TypeScheduleCreated: domain.ScheduleCreated{Every: domain.Duration(time.Minute), CatchUp: "once",
			Task: json.RawMessage(`{"description":"d"}`), By: "ops"},
		domain.TypeScheduleDeleted:  domain.ScheduleDeleted{By: "ops"},
		domain.TypeTaskAssigned:     domain.TaskAssigned{AgentID: "a1", Generation: 2},
		domain.TypeTaskAccepted:     domain.TaskAccepted{AgentID: "a1", Generation: 2},
		domain.TypeTaskProgressed:   domain.TaskProgressed{AgentID: "a1", Generation: 2, Message: "half"},
		domain.TypeTaskCompleted:    domain.TaskCompleted{AgentID: "a1", Generation: 2, Result: json.RawMessage(`{"ok":true}`)},
		domain.TypeTaskFailed:       domain.TaskFailed{AgentID: "a1", Generation: 2, Error: "boom", RetryCount: 1},
		domain.TypeTaskRetried:      domain.TaskRetried{Generation: 3},
		domain.TypeTaskDeadLettered: domain.TaskDeadLettered{Reason: "max_retries"},
		domain.TypeTaskReclaimed:    domain.TaskReclaimed{AgentID: "a1", Reason: "agent_gone", Generation: 3, ReclaimCount: 1},
		domain.TypeTaskCancelled:    domain.TaskCancelled{By: "ops", Reason: "stop"},
		domain.TypeTaskRequeued:     domain.TaskRequeued{By: "ops", Generation: 4},
		domain.TypeTaskCompacted: domain.TaskCompacted{Order: 7, Task: domain.Task{ID: "task-1", Description: "d",
			Status: domain.StatusCompleted, NeededCapabilities: []string{"go"}, CreatedAt: cb, UpdatedAt: cb, QueuedAt: cb,
			History: []domain.HistoryEntry{{Event: "task.completed", At: cb}}}},

		domain.TypeStoreLossAccepted: domain.StoreLossAccepted{Missing: "sequences 20", Through: 20, By: "ops"},
		domain.TypeStoreEventQuarantined: domain.StoreEventQuarantined{Seq: 7, Subject: "agentcom.evt.task.task-1",
			Reason: `unknown event type "task.teleported"`, By: "ops"},
		domain.TypeConfigChanged: domain.ConfigChanged{Key: "agents.heartbeat_interval", Value: "45s", From: "30s", By: "ops"},

		domain.TypeAgentConnected:    domain.AgentConnected{Name: "n", Capabilities: []string{"go"}, Session: "s1", TaskID: "task-1", Working: true},
		domain.TypeAgentDisconnected: domain.AgentDisconnected{Session: "s1", Reason: "connection_closed"},
		domain.TypeAgentEvicted:      domain.AgentEvicted{StaleMS: 61000},
		domain.TypeAgentFlagged:      domain.AgentFlagged{Reason: "acceptance_timeout", TaskID: "task-1"},
		domain.TypeAgentUnflagged:    domain.AgentUnflagged{},
		domain.TypeAgentBlocked:      domain.AgentBlocked{TaskID: "task-1", Reason: "waiting for review"},
		domain.TypeAgentUnblocked:    domain.AgentUnblocked{TaskID: "task-1"},
	}
}

func TestEventTypesAreTheStoredNames(t *testing.T) {
	t.Parallel()
	want := []string{
		"task.submitted", "task.assigned", "task.accepted", "task.progressed", "task.completed", "task.failed",
		"task.retried", "task.dead_lettered", "task.reclaimed", "task.cancelled", "task.requeued", "task.compacted",
		"task.waiting", "task.released", "goal.created", "goal.completed", "goal.failed", "goal.cancelled", "goal.reopened",
		"schedule.created", "schedule.deleted",
		"agent.connected", "agent.disconnected", "agent.evicted", "agent.flagged_unresponsive",
		"agent.unflagged", "agent.blocked", "agent.unblocked", "store.loss_accepted",
		"store.event_quarantined", "config.changed",
	}
	require.ElementsMatch(t, want, domain.EventTypes())
	s := samples()
	require.Len(t, s, len(want))
	versions := map[string]int{"task.submitted": 3, "task.retried": 2} // the others are at 1
	for typ, e := range s {
		require.Equal(t, typ, e.EventType())
		require.Equal(t, max(versions[typ], 1), e.SchemaVersion(), typ)
	}
}

func TestEnvelopeRoundTripEveryType(t *testing.T) {
	t.Parallel()
	s := samples()
	for _, typ := range domain.EventTypes() {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			e, ok := s[typ]
			require.True(t, ok, "no sample for registered type %s", typ)
			for _, reqID := range []string{"req-1", ""} {
				env := domain.Envelope{ID: "evt-1", Type: typ, Version: e.SchemaVersion(), Time: envTime,
					Aggregate: "task-1", RequestID: reqID, Data: e}
				b, err := domain.EncodeEnvelope(env)
				require.NoError(t, err)
				got, err := domain.DecodeEnvelope(b)
				require.NoError(t, err)
				require.Equal(t, env, got)
				require.Equal(t, reflect.TypeOf(e), reflect.TypeOf(got.Data))
				require.NotEqual(t, reflect.Pointer, reflect.TypeOf(got.Data).Kind())
			}
		})
	}
}

func TestEncodeEnvelopeStoredForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  domain.Envelope
		want string
	}{
		{
			"assigned, seq not stored",
			domain.Envelope{ID: "evt-1", Type: "task.assigned", Version: 1, Time: envTime, Aggregate: "task-1",
				RequestID: "req-1", Seq: 42, Data: domain.TaskAssigned{AgentID: "a1", Generation: 2}},
			`{"id":"evt-1","type":"task.assigned","v":1,"time":"2025-01-02T03:04:05.123456789Z","aggregate":"task-1",
			  "request_id":"req-1","data":{"agent_id":"a1","generation":2}}`,
		},
		{
			"submitted, priority by name, no request id",
			domain.Envelope{ID: "evt-2", Type: "task.submitted", Version: 1, Time: envTime, Aggregate: "task-1",
				Data: domain.TaskSubmitted{Description: "d", Priority: domain.PriorityUrgent, MaxRetries: 3, MaxReclaims: 5}},
			`{"id":"evt-2","type":"task.submitted","v":1,"time":"2025-01-02T03:04:05.123456789Z","aggregate":"task-1",
			  "data":{"description":"d","priority":"urgent","max_retries":3,"max_reclaims":5}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := domain.EncodeEnvelope(tc.env)
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(b))
			got, err := domain.DecodeEnvelope(b)
			require.NoError(t, err)
			require.Equal(t, uint64(0), got.Seq)
		})
	}
}

// The stored form is written by hand for speed; it must be byte for byte
// what encoding/json writes, escapes and time zones included.
func TestEncodeEnvelopeMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("x", -5*3600-30*60)
	for _, env := range []domain.Envelope{
		{ID: "evt-1", Type: "task.assigned", Version: 1, Time: envTime, Aggregate: "task-1",
			Data: domain.TaskAssigned{AgentID: "a1", Generation: 2}},
		{ID: `evt "quoted" \ back`, Type: "task.progressed", Version: 2, Time: envTime.In(zone), Aggregate: "t<&>",
			RequestID: "req\n\u0001 é ✓ \u2028", Data: domain.TaskProgressed{AgentID: "a"}},
		{ID: "e", Type: "task.cancelled", Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Aggregate: "x",
			Data: domain.TaskCancelled{}},
	} {
		data, err := json.Marshal(env.Data)
		require.NoError(t, err)
		want, err := json.Marshal(struct {
			domain.Envelope
			Data json.RawMessage `json:"data"`
		}{env, data})
		require.NoError(t, err)
		got, err := domain.EncodeEnvelope(env)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	}
}

func TestDecodeEnvelopeUnknownEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		json string
		want domain.UnknownEventError
	}{
		{"unknown type", `{"id":"e1","type":"task.exploded","v":1,"time":"2025-01-02T03:04:05Z","aggregate":"t","data":{}}`,
			domain.UnknownEventError{Type: "task.exploded"}},
		{"missing type", `{"id":"e1","v":1,"time":"2025-01-02T03:04:05Z","aggregate":"t","data":{}}`,
			domain.UnknownEventError{Type: ""}},
		{"newer schema version", `{"id":"e1","type":"task.assigned","v":2,"time":"2025-01-02T03:04:05Z","aggregate":"t","data":{"agent_id":"a","generation":1}}`,
			domain.UnknownEventError{Type: "task.assigned", Version: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, err := domain.DecodeEnvelope([]byte(tc.json))
			require.Error(t, err)
			require.Equal(t, domain.Envelope{}, env)
			var u *domain.UnknownEventError
			require.ErrorAs(t, err, &u)
			require.Equal(t, tc.want, *u)
		})
	}
}

func TestDecodeEnvelopeMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		json string
	}{
		{"not json", `{"id":`},
		{"data of wrong shape", `{"id":"e1","type":"task.assigned","v":1,"time":"2025-01-02T03:04:05Z","aggregate":"t","data":{"generation":"two"}}`},
		{"unknown priority", `{"id":"e1","type":"task.submitted","v":1,"time":"2025-01-02T03:04:05Z","aggregate":"t","data":{"description":"d","priority":"extreme"}}`},
		{"missing data", `{"id":"e1","type":"task.assigned","v":1,"time":"2025-01-02T03:04:05Z","aggregate":"t"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, err := domain.DecodeEnvelope([]byte(tc.json))
			require.Error(t, err)
			require.Equal(t, domain.Envelope{}, env)
			var u *domain.UnknownEventError
			require.False(t, errors.As(err, &u), "malformed input is not an unknown event: %v", err)
		})
	}
}

func TestPriorityJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    domain.Priority
		json string
	}{
		{domain.PriorityUrgent, `"urgent"`},
		{domain.PriorityHigh, `"high"`},
		{domain.PriorityNormal, `"normal"`},
		{domain.PriorityLow, `"low"`},
	}
	for _, tc := range tests {
		t.Run(tc.json, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tc.p)
			require.NoError(t, err)
			require.Equal(t, tc.json, string(b))
			p := domain.Priority(99)
			require.NoError(t, json.Unmarshal([]byte(tc.json), &p))
			require.Equal(t, tc.p, p)
		})
	}
}

func TestPriorityUnmarshalRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`"extreme"`, `"URGENT"`, `""`, `2`, `null`, `{}`, `" high"`} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			p := domain.PriorityLow
			require.Error(t, json.Unmarshal([]byte(in), &p))
			require.Equal(t, domain.PriorityLow, p, "a rejected value must not change the priority")
		})
	}
}

func TestPriorityStringAndValid(t *testing.T) {
	t.Parallel()
	require.Equal(t, [4]domain.Priority{0, 1, 2, 3}, domain.Priorities)
	require.Equal(t, 4, domain.PriorityCount)
	tests := []struct {
		p     domain.Priority
		name  string
		valid bool
	}{
		{domain.PriorityUrgent, "urgent", true},
		{domain.PriorityHigh, "high", true},
		{domain.PriorityNormal, "normal", true},
		{domain.PriorityLow, "low", true},
		{domain.Priority(4), "priority(4)", false},
		{domain.Priority(-1), "priority(-1)", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.name, tc.p.String())
			require.Equal(t, tc.valid, tc.p.Valid())
		})
	}
}

func TestParsePriority(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want domain.Priority
		ok   bool
	}{
		{"urgent", domain.PriorityUrgent, true},
		{"high", domain.PriorityHigh, true},
		{"normal", domain.PriorityNormal, true},
		{"low", domain.PriorityLow, true},
		{"", 0, false},
		{"High", 0, false},
		{"medium", 0, false},
		{"2", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			p, ok := domain.ParsePriority(tc.in)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, p)
		})
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	require.Equal(t, []domain.Status{"waiting", "queued", "assigned", "working", "completed", "dead_letter", "cancelled"}, domain.Statuses)
	tests := []struct {
		in   string
		want domain.Status
		ok   bool
	}{
		{"queued", domain.StatusQueued, true},
		{"assigned", domain.StatusAssigned, true},
		{"working", domain.StatusWorking, true},
		{"completed", domain.StatusCompleted, true},
		{"dead_letter", domain.StatusDeadLetter, true},
		{"cancelled", domain.StatusCancelled, true},
		{"", "", false},
		{"Queued", "", false},
		{"dead-letter", "", false},
		{"submitted", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			s, ok := domain.ParseStatus(tc.in)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, s)
		})
	}
}

func TestStatusActiveAndFinal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s             domain.Status
		active, final bool
	}{
		{domain.StatusQueued, false, false},
		{domain.StatusAssigned, true, false},
		{domain.StatusWorking, true, false},
		{domain.StatusCompleted, false, true},
		{domain.StatusDeadLetter, false, false},
		{domain.StatusCancelled, false, true},
	}
	for _, tc := range tests {
		t.Run(string(tc.s), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.active, tc.s.Active())
			require.Equal(t, tc.final, tc.s.Final())
		})
	}
}
