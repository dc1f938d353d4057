package domain

import (
	"strings"
	"time"
)

// Evolve applies one event to a task and returns the new state. It never
// changes t (the result is a copy), so callers can apply events to a
// speculative state and throw it away. t is nil before TaskSubmitted.
// Events are facts: Evolve does not re-check them.
func Evolve(t *Task, env Envelope) *Task {
	if s, ok := env.Data.(TaskSubmitted); ok {
		return submitted(env, s)
	}
	if c, ok := env.Data.(TaskCompacted); ok {
		n := c.Task
		n.ID, n.Compacted = env.Aggregate, true
		n.History = append([]HistoryEntry(nil), c.Task.History...)
		return &n
	}
	if t == nil {
		return nil
	}
	n := t.clone()
	n.UpdatedAt = env.Time
	entry := HistoryEntry{Event: env.Type, At: env.Time, RequestID: env.RequestID}
	switch e := env.Data.(type) {
	case TaskAssigned:
		n.Status, n.Generation, n.AssignedTo = StatusAssigned, e.Generation, e.AgentID
		n.AssignedAt, n.RunAfter = timePtr(env.Time), nil
		entry.AgentID = e.AgentID
		if e.Accepted {
			n.Status, entry.Detail = StatusWorking, "accepted when assigned"
		}
	case TaskAccepted:
		n.Status = StatusWorking
		entry.AgentID = e.AgentID
	case TaskProgressed:
		return n // heartbeats refresh UpdatedAt only: they would flood the history
	case TaskCompleted:
		n.Status, n.Result, n.Usage = StatusCompleted, e.Result, e.Usage
		entry.AgentID = e.AgentID
	case TaskFailed:
		n.RetryCount, n.LastError = e.RetryCount, e.Error
		entry.AgentID, entry.Detail = e.AgentID, e.Error
	case TaskRetried:
		requeue(n, e.Generation)
		n.QueuedAt, n.RunAfter = env.Time, e.RunAfter
		if e.RunAfter != nil {
			entry.Detail = "run after " + e.RunAfter.UTC().Format(time.RFC3339Nano)
		}
	case TaskDeadLettered:
		n.Status, n.AssignedTo, n.AssignedAt = StatusDeadLetter, "", nil
		entry.Detail = e.Reason
	case TaskReclaimed:
		requeue(n, e.Generation)
		n.QueuedAt = env.Time
		n.ReclaimCount = e.ReclaimCount
		entry.AgentID, entry.Detail = e.AgentID, e.Reason
	case TaskCancelled:
		n.Status, n.AssignedTo, n.AssignedAt = StatusCancelled, "", nil
		entry.Detail = e.Reason
	case TaskWaiting:
		n.Status, entry.Detail = StatusWaiting, "waiting on "+strings.Join(e.On, ", ")
	case TaskReleased:
		n.Status, n.QueuedAt = StatusQueued, env.Time
		entry.Detail = "released by " + e.By
		if e.Reason != "" {
			entry.Detail += "; " + e.Reason
		}
	case TaskRequeued:
		requeue(n, e.Generation)
		n.QueuedAt = env.Time
		n.RetryCount, n.ReclaimCount, n.LastError = 0, 0, ""
		if n.CompleteBy != nil && !n.CompleteBy.After(env.Time) {
			n.CompleteBy = nil // a deadline already passed would only expire it again
		}
	}
	n.History = appendHistory(n.History, entry)
	return n
}

func submitted(env Envelope, s TaskSubmitted) *Task {
	return &Task{
		ID:                 env.Aggregate,
		Description:        s.Description,
		Priority:           s.Priority,
		Metadata:           s.Metadata,
		NeededCapabilities: s.NeededCapabilities,
		MaxRetries:         s.MaxRetries,
		MaxReclaims:        s.MaxReclaims,
		CompleteBy:         s.CompleteBy,
		RunAfter:           s.RunAt,
		Extras:             extrasOf(s),
		Status:             StatusQueued,
		SubmittedBy:        s.SubmittedBy,
		RequestID:          env.RequestID,
		CreatedAt:          env.Time,
		UpdatedAt:          env.Time,
		QueuedAt:           env.Time,
		History:            []HistoryEntry{{Event: env.Type, At: env.Time, RequestID: env.RequestID}},
	}
}

// extrasOf is what a submit set of the rarely set fields, nil for none.
func extrasOf(s TaskSubmitted) *Extras {
	if s.RetryBase == 0 && s.RetryMax == 0 && s.Workflow.empty() {
		return nil
	}
	x := &Extras{RetryOverride: RetryOverride{RetryBase: s.RetryBase, RetryMax: s.RetryMax}}
	if s.Workflow != nil {
		x.Workflow = *s.Workflow
	}
	return x
}

func requeue(n *Task, gen uint64) {
	n.Status, n.Generation, n.AssignedTo, n.AssignedAt, n.RunAfter = StatusQueued, gen, "", nil, nil
}

func appendHistory(h []HistoryEntry, e HistoryEntry) []HistoryEntry {
	h = append(h, e)
	if len(h) > MaxHistory {
		h = h[len(h)-MaxHistory:]
	}
	return h
}

func timePtr(t time.Time) *time.Time { return &t }
