package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// GoalStatus is where a goal is: open while any of its tasks is, then
// completed (every task completed), failed (one was dead-lettered or
// cancelled) or cancelled (an operator cancelled the goal).
type GoalStatus string

// The goal statuses.
const (
	GoalStatusOpen      GoalStatus = "open"
	GoalStatusCompleted GoalStatus = "completed"
	GoalStatusFailed    GoalStatus = "failed"
	GoalStatusCancelled GoalStatus = "cancelled"
)

// Goal is the state of one goal, built from its events. Its tasks are
// the tasks submitted with its id (the task projection keeps them).
type Goal struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	Description string     `json:"description,omitempty"`
	CreatedBy   string     `json:"created_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	Status      GoalStatus `json:"status"`
	SettledAt   *time.Time `json:"settled_at,omitempty"`
	Seq         uint64     `json:"-"` // its subject's last sequence
}

// Limits of a goal's text.
const (
	MaxGoalTitle       = 200
	MaxGoalDescription = 10000
)

// The goal event type strings (stored: never rename one).
const (
	TypeGoalCreated   = "goal.created"
	TypeGoalCompleted = "goal.completed"
	TypeGoalFailed    = "goal.failed"
	TypeGoalCancelled = "goal.cancelled"
	TypeGoalReopened  = "goal.reopened"
)

// GoalReopened records a task joining a goal that had settled.
type GoalReopened struct {
	TaskID string `json:"task_id,omitempty"`
}

// GoalCreated starts a goal.
type GoalCreated struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	By          string `json:"by,omitempty"`
}

// GoalSettled ends a goal's open spell: goal.completed or goal.failed,
// with its tasks' counts by status then.
type GoalSettled struct {
	Counts map[Status]int `json:"counts"`
}

// GoalCancelled records an operator's cancel of a goal (its open tasks
// are cancelled with it).
type GoalCancelled struct {
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// GoalCompleted and GoalFailed are GoalSettled under its two stored
// types.
type (
	GoalCompleted struct{ GoalSettled }
	GoalFailed    struct{ GoalSettled }
)

// EventType implements Event.
func (GoalCreated) EventType() string   { return TypeGoalCreated }
func (GoalCompleted) EventType() string { return TypeGoalCompleted }
func (GoalFailed) EventType() string    { return TypeGoalFailed }
func (GoalCancelled) EventType() string { return TypeGoalCancelled }
func (GoalReopened) EventType() string  { return TypeGoalReopened }

// SchemaVersion implements Event.
func (GoalCreated) SchemaVersion() int   { return 1 }
func (GoalCompleted) SchemaVersion() int { return 1 }
func (GoalFailed) SchemaVersion() int    { return 1 }
func (GoalCancelled) SchemaVersion() int { return 1 }
func (GoalReopened) SchemaVersion() int  { return 1 }

// IsGoal tells whether the event belongs to a goal.
func (e Envelope) IsGoal() bool { return strings.HasPrefix(e.Type, "goal.") }

// EvolveGoal applies one goal event (g is nil before goal.created).
func EvolveGoal(g *Goal, env Envelope) *Goal {
	if c, ok := env.Data.(GoalCreated); ok {
		return &Goal{ID: env.Aggregate, Title: c.Title, Description: c.Description, CreatedBy: c.By,
			CreatedAt: env.Time, Status: GoalStatusOpen, Seq: env.Seq}
	}
	if g == nil {
		return nil
	}
	n := *g
	n.Seq = env.Seq
	switch env.Data.(type) {
	case GoalCompleted:
		n.Status, n.SettledAt = GoalStatusCompleted, timePtr(env.Time)
	case GoalFailed:
		n.Status, n.SettledAt = GoalStatusFailed, timePtr(env.Time)
	case GoalCancelled:
		n.Status, n.SettledAt = GoalStatusCancelled, timePtr(env.Time)
	case GoalReopened:
		n.Status, n.SettledAt = GoalStatusOpen, nil
	}
	return &n
}

// CheckGoal says what is wrong with a new goal's fields.
func CheckGoal(id, title, description string) error {
	v := &ValidationError{}
	if id != "" && (!ValidTaskID(id) || len(id) > MaxGoalIDLength) {
		v.Add("id", "invalid", "id must be letters, digits, '_' and '-', at most 128")
	}
	switch {
	case strings.TrimSpace(title) == "":
		v.Add("title", "required", "title is required and must not be blank")
	case !utf8.ValidString(title) || utf8.RuneCountInString(title) > MaxGoalTitle:
		v.Add("title", "too_long", fmt.Sprintf("title must be UTF-8, at most %d characters", MaxGoalTitle))
	}
	if !utf8.ValidString(description) || utf8.RuneCountInString(description) > MaxGoalDescription {
		v.Add("description", "too_long", fmt.Sprintf("description must be UTF-8, at most %d characters", MaxGoalDescription))
	}
	return v.Err()
}

// Settle says what a goal's tasks make of it: open while any is open,
// else completed when all completed, else failed. A goal without tasks is
// open.
func Settle(counts map[Status]int) GoalStatus {
	total := 0
	for st, n := range counts {
		total += n
		if n > 0 && !st.Final() && st != StatusDeadLetter {
			return GoalStatusOpen
		}
	}
	switch {
	case total == 0:
		return GoalStatusOpen
	case counts[StatusCompleted] == total:
		return GoalStatusCompleted
	}
	return GoalStatusFailed
}
