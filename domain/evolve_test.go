package domain_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentcom/agentcom/domain"
)

var (
	t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	tE = t0.Add(time.Hour) // the time of the event under test
)

func envelope(e domain.Event, at time.Time) domain.Envelope {
	return domain.Envelope{ID: "evt-1", Type: e.EventType(), Version: e.SchemaVersion(), Time: at,
		Aggregate: "task-1", RequestID: "req-9", Data: e}
}

// queuedTask is a submitted, never-assigned task.
func queuedTask() *domain.Task {
	return &domain.Task{
		ID: "task-1", Description: "d", Priority: domain.PriorityHigh,
		Metadata: json.RawMessage(`{"m":1}`), NeededCapabilities: []string{"go"},
		MaxRetries: 3, MaxReclaims: 5, Status: domain.StatusQueued, Generation: 2,
		RetryCount: 1, ReclaimCount: 1, LastError: "old", SubmittedBy: "alice",
		CreatedAt: t0, UpdatedAt: t0,
		History: []domain.HistoryEntry{{Event: domain.TypeTaskSubmitted, At: t0, RequestID: "req-1"}},
	}
}

// workingTask is held by a1 under generation 3.
func workingTask() *domain.Task {
	t := queuedTask()
	t.Status, t.Generation, t.AssignedTo, t.AssignedAt, t.UpdatedAt = domain.StatusWorking, 3, "a1", timePtr(t1), t1
	t.History = append(t.History,
		domain.HistoryEntry{Event: domain.TypeTaskAssigned, At: t1, AgentID: "a1"},
		domain.HistoryEntry{Event: domain.TypeTaskAccepted, At: t1, AgentID: "a1"})
	return t
}

func deadTask() *domain.Task {
	t := queuedTask()
	t.Status, t.Generation, t.RetryCount, t.ReclaimCount = domain.StatusDeadLetter, 4, 3, 2
	return t
}

func TestEvolveSubmitted(t *testing.T) {
	t.Parallel()
	cb := t0.Add(48 * time.Hour)
	e := domain.TaskSubmitted{
		Description: "d", Priority: domain.PriorityLow, Metadata: json.RawMessage(`{"m":1}`),
		NeededCapabilities: []string{"a", "b"}, MaxRetries: 4, MaxReclaims: 5, CompleteBy: &cb, SubmittedBy: "alice",
	}
	got := domain.Evolve(nil, envelope(e, tE))
	require.Equal(t, &domain.Task{
		ID: "task-1", Description: "d", Priority: domain.PriorityLow, Metadata: json.RawMessage(`{"m":1}`),
		NeededCapabilities: []string{"a", "b"}, MaxRetries: 4, MaxReclaims: 5, CompleteBy: &cb,
		Status: domain.StatusQueued, SubmittedBy: "alice", RequestID: "req-9", CreatedAt: tE, UpdatedAt: tE, QueuedAt: tE,
		History: []domain.HistoryEntry{{Event: "task.submitted", At: tE, RequestID: "req-9"}},
	}, got)
}

func TestEvolveNonSubmissionOnNilTaskIsNil(t *testing.T) {
	t.Parallel()
	for _, e := range []domain.Event{
		domain.TaskAssigned{AgentID: "a1", Generation: 1}, domain.TaskAccepted{}, domain.TaskProgressed{},
		domain.TaskCompleted{}, domain.TaskFailed{}, domain.TaskRetried{}, domain.TaskDeadLettered{},
		domain.TaskReclaimed{}, domain.TaskCancelled{}, domain.TaskRequeued{},
	} {
		t.Run(e.EventType(), func(t *testing.T) {
			t.Parallel()
			require.Nil(t, domain.Evolve(nil, envelope(e, tE)))
		})
	}
}

func TestEvolveEachEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		before func() *domain.Task
		event  domain.Event
		want   func(w *domain.Task) // applied to a copy of before, whose UpdatedAt is already tE
	}{
		{"assigned", queuedTask, domain.TaskAssigned{AgentID: "a7", Generation: 3}, func(w *domain.Task) {
			w.Status, w.Generation, w.AssignedTo, w.AssignedAt = domain.StatusAssigned, 3, "a7", timePtr(tE)
			w.History = append(w.History, domain.HistoryEntry{Event: "task.assigned", At: tE, AgentID: "a7", RequestID: "req-9"})
		}},
		{"accepted", func() *domain.Task {
			t := workingTask()
			t.Status = domain.StatusAssigned
			return t
		}, domain.TaskAccepted{AgentID: "a1", Generation: 3}, func(w *domain.Task) {
			w.Status = domain.StatusWorking
			w.History = append(w.History, domain.HistoryEntry{Event: "task.accepted", At: tE, AgentID: "a1", RequestID: "req-9"})
		}},
		{"progressed refreshes UpdatedAt only", workingTask, domain.TaskProgressed{AgentID: "a1", Generation: 3, Message: "half"}, func(*domain.Task) {}},
		{"completed", workingTask, domain.TaskCompleted{AgentID: "a1", Generation: 3, Result: json.RawMessage(`{"r":2}`)}, func(w *domain.Task) {
			w.Status, w.Result = domain.StatusCompleted, json.RawMessage(`{"r":2}`)
			w.History = append(w.History, domain.HistoryEntry{Event: "task.completed", At: tE, AgentID: "a1", RequestID: "req-9"})
		}},
		{"failed keeps status", workingTask, domain.TaskFailed{AgentID: "a1", Generation: 3, Error: "boom", RetryCount: 2}, func(w *domain.Task) {
			w.RetryCount, w.LastError = 2, "boom"
			w.History = append(w.History, domain.HistoryEntry{Event: "task.failed", At: tE, AgentID: "a1", Detail: "boom", RequestID: "req-9"})
		}},
		{"retried", workingTask, domain.TaskRetried{Generation: 4}, func(w *domain.Task) {
			w.Status, w.Generation, w.AssignedTo, w.AssignedAt, w.QueuedAt = domain.StatusQueued, 4, "", nil, tE
			w.History = append(w.History, domain.HistoryEntry{Event: "task.retried", At: tE, RequestID: "req-9"})
		}},
		{"dead lettered", workingTask, domain.TaskDeadLettered{Reason: "max_retries"}, func(w *domain.Task) {
			w.Status, w.AssignedTo, w.AssignedAt = domain.StatusDeadLetter, "", nil
			w.History = append(w.History, domain.HistoryEntry{Event: "task.dead_lettered", At: tE, Detail: "max_retries", RequestID: "req-9"})
		}},
		{"reclaimed", workingTask, domain.TaskReclaimed{AgentID: "a1", Reason: "no_heartbeat", Generation: 4, ReclaimCount: 2}, func(w *domain.Task) {
			w.Status, w.Generation, w.AssignedTo, w.AssignedAt, w.ReclaimCount = domain.StatusQueued, 4, "", nil, 2
			w.QueuedAt = tE
			w.History = append(w.History, domain.HistoryEntry{Event: "task.reclaimed", At: tE, AgentID: "a1", Detail: "no_heartbeat", RequestID: "req-9"})
		}},
		{"cancelled while working", workingTask, domain.TaskCancelled{By: "ops", Reason: "stop"}, func(w *domain.Task) {
			w.Status, w.AssignedTo, w.AssignedAt = domain.StatusCancelled, "", nil
			w.History = append(w.History, domain.HistoryEntry{Event: "task.cancelled", At: tE, Detail: "stop", RequestID: "req-9"})
		}},
		{"cancelled while queued", queuedTask, domain.TaskCancelled{By: "ops"}, func(w *domain.Task) {
			w.Status = domain.StatusCancelled
			w.History = append(w.History, domain.HistoryEntry{Event: "task.cancelled", At: tE, RequestID: "req-9"})
		}},
		{"requeued", deadTask, domain.TaskRequeued{By: "ops", Generation: 5}, func(w *domain.Task) {
			w.Status, w.Generation, w.RetryCount, w.ReclaimCount, w.LastError = domain.StatusQueued, 5, 0, 0, ""
			w.QueuedAt = tE
			w.History = append(w.History, domain.HistoryEntry{Event: "task.requeued", At: tE, RequestID: "req-9"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := tc.before()
			snapshot := deepCopy(before)
			want := deepCopy(before)
			want.UpdatedAt = tE
			tc.want(want)

			got := domain.Evolve(before, envelope(tc.event, tE))

			require.Equal(t, want, got)
			require.Equal(t, snapshot, before, "Evolve changed its input task")
			require.NotSame(t, before, got)
			// The result's history must not share memory with the input's.
			got.History[0].Detail = "scribble"
			require.Equal(t, snapshot.History, before.History)
		})
	}
}

func TestEvolveHistoryKeepsNewestMaxHistory(t *testing.T) {
	t.Parallel()
	task := domain.Evolve(nil, envelope(domain.TaskSubmitted{Description: "d", MaxRetries: 3}, t0))
	for i := range 60 {
		task = domain.Evolve(task, envelope(domain.TaskFailed{AgentID: "a1", Error: fmt.Sprint(i), RetryCount: int32(i + 1)}, t0.Add(time.Duration(i+1)*time.Second)))
		require.Len(t, task.History, min(i+2, domain.MaxHistory))
	}
	require.Equal(t, 50, domain.MaxHistory)
	require.Len(t, task.History, 50)
	// 61 entries were written (submitted + 60 failures); the 11 oldest are gone.
	for j, h := range task.History {
		i := j + 10
		require.Equal(t, domain.HistoryEntry{
			Event: "task.failed", At: t0.Add(time.Duration(i+1) * time.Second), AgentID: "a1",
			Detail: fmt.Sprint(i), RequestID: "req-9",
		}, h)
	}
	require.Equal(t, int32(60), task.RetryCount)
	require.Equal(t, "59", task.LastError)
}

func TestEvolveAtHistoryCapDoesNotMutateInput(t *testing.T) {
	t.Parallel()
	task := queuedTask()
	task.History = nil
	for i := range domain.MaxHistory {
		task.History = append(task.History, domain.HistoryEntry{Event: "task.failed", Detail: fmt.Sprint(i)})
	}
	snapshot := deepCopy(task)
	got := domain.Evolve(task, envelope(domain.TaskDeadLettered{Reason: "max_retries"}, tE))
	require.Equal(t, snapshot, task)
	require.Len(t, got.History, domain.MaxHistory)
	require.Equal(t, "1", got.History[0].Detail)
	require.Equal(t, domain.HistoryEntry{Event: "task.dead_lettered", At: tE, Detail: "max_retries", RequestID: "req-9"}, got.History[domain.MaxHistory-1])
}

func TestEvolveProgressAddsNoHistory(t *testing.T) {
	t.Parallel()
	task := workingTask()
	for i := range 100 {
		task = domain.Evolve(task, envelope(domain.TaskProgressed{AgentID: "a1", Generation: 3, Message: fmt.Sprint(i)}, tE.Add(time.Duration(i)*time.Second)))
	}
	require.Equal(t, workingTask().History, task.History)
	require.Equal(t, tE.Add(99*time.Second), task.UpdatedAt)
	require.Equal(t, domain.StatusWorking, task.Status)
}
