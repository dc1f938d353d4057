package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Workflow is what ties a task to other work: the tasks it waits for, its
// goal, the schedule tick that made it, the idempotency key it was
// submitted under. Most tasks have none, so Task holds it by pointer.
type Workflow struct {
	DependsOn []string `json:"depends_on,omitempty"`
	// OnDependencyFailure is what happens when a dependency is
	// dead-lettered or cancelled: cancel (the default, "") or run.
	OnDependencyFailure string     `json:"on_dependency_failure,omitempty"`
	GoalID              string     `json:"goal_id,omitempty"`
	IdempotencyKey      string     `json:"idempotency_key,omitempty"`
	Schedule            string     `json:"schedule,omitempty"`
	Tick                *time.Time `json:"tick,omitempty"` // the schedule's tick this task runs
}

// Limits of a workflow's fields.
const (
	MaxDependencies      = 1000 // a batch's size: one task may wait on all the others
	MaxIdempotencyKey    = 255
	MaxGoalIDLength      = 128
	OnFailureCancel      = "cancel"
	OnFailureRun         = "run"
	MaxDependencyResults = 64 << 10 // what a push carries of the dependencies' results, in all
)

// empty reports whether w ties the task to nothing.
func (w *Workflow) empty() bool {
	return w == nil || (len(w.DependsOn) == 0 && w.OnDependencyFailure == "" && w.GoalID == "" &&
		w.IdempotencyKey == "" && w.Schedule == "" && w.Tick == nil)
}

// stored is what a submit's event keeps of w: nil when it ties the task to
// nothing (most submits: no allocation), else a copy sharing no slice.
func (w *Workflow) stored() *Workflow {
	if w.empty() {
		return nil
	}
	c := *w
	c.DependsOn = slices.Clone(w.DependsOn)
	return &c
}

// Deps are the task's dependencies (nil-safe).
func (t *Task) Deps() []string {
	if t.Extras == nil {
		return nil
	}
	return t.DependsOn
}

// Goal is the task's goal id, "" for none (nil-safe).
func (t *Task) Goal() string {
	if t.Extras == nil {
		return ""
	}
	return t.GoalID
}

// RunsOnFailure reports whether the task runs even when a dependency fails.
func (t *Task) RunsOnFailure() bool {
	return t.Extras != nil && t.OnDependencyFailure == OnFailureRun
}

// Check says what is wrong with a submit's workflow fields. Dependencies
// are named depends_on[i]; their existence is the caller's to check.
func (w *Workflow) Check(v *ValidationError, taskID string) {
	if w == nil {
		return
	}
	if len(w.DependsOn) > MaxDependencies {
		v.Add("depends_on", "too_long", fmt.Sprintf("%d given, at most %d", len(w.DependsOn), MaxDependencies))
	}
	for i, id := range w.DependsOn {
		switch field := fmt.Sprintf("depends_on[%d]", i); {
		case !ValidTaskID(id):
			v.Add(field, "invalid", fmt.Sprintf("%q is not a task id", id))
		case id == taskID:
			v.Add(field, "cycle", "a task cannot depend on itself")
		case slices.Contains(w.DependsOn[:i], id):
			v.Add(field, "duplicate", fmt.Sprintf("%s is named twice", id))
		}
	}
	switch w.OnDependencyFailure {
	case "", OnFailureCancel, OnFailureRun:
	default:
		v.Add("on_dependency_failure", "invalid", "on_dependency_failure must be cancel or run")
	}
	if w.GoalID != "" && (!ValidTaskID(w.GoalID) || len(w.GoalID) > MaxGoalIDLength) {
		v.Add("goal_id", "invalid", "goal_id must be letters, digits, '_' and '-', at most 128")
	}
	checkText(v, "idempotency_key", w.IdempotencyKey, MaxIdempotencyKey)
}

// checkText refuses a present value that is blank, not UTF-8 or too long.
func checkText(v *ValidationError, field, s string, limit int) {
	switch {
	case s == "":
	case strings.TrimSpace(s) == "":
		v.Add(field, "invalid", field+" must not be blank")
	case !utf8.ValidString(s):
		v.Add(field, "invalid", field+" must be valid UTF-8")
	case len(s) > limit:
		v.Add(field, "too_long", fmt.Sprintf("%s must be at most %d bytes", field, limit))
	}
}

// The workflow event type strings (stored: never rename one).
const (
	TypeTaskWaiting  = "task.waiting"
	TypeTaskReleased = "task.released"
)

// TaskWaiting follows a TaskSubmitted whose dependencies were not all
// complete: the task waits for On (the open ones when it was submitted).
type TaskWaiting struct {
	On []string `json:"on"`
}

// TaskReleased queues a waiting task: its last dependency completed (or
// failed, and the task runs on failure). By is that dependency.
type TaskReleased struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// EventType implements Event.
func (TaskWaiting) EventType() string  { return TypeTaskWaiting }
func (TaskReleased) EventType() string { return TypeTaskReleased }

// SchemaVersion implements Event.
func (TaskWaiting) SchemaVersion() int  { return 1 }
func (TaskReleased) SchemaVersion() int { return 1 }

// Dependency is what a waiting task needs to know of one dependency: its
// id and status ("" when it is not stored yet: a batch's later task).
type Dependency struct {
	ID     string
	Status Status
}

// Verdict is what a waiting task's dependencies say it should do now.
type Verdict struct {
	Release bool   // queue it
	Cancel  bool   // a dependency failed and the task does not run on failure
	By      string // the dependency that decided it
	Reason  string
}

// Judge reads a waiting task's dependencies: release when every one
// completed (or, for a task that runs on failure, settled), cancel when
// one failed and the task does not run on failure; neither while one is
// still open.
func Judge(t *Task, deps []Dependency) Verdict {
	var by string
	failed := ""
	for _, d := range deps {
		switch {
		case d.Status == StatusCompleted:
			by = d.ID
		case d.Status == StatusDeadLetter || d.Status == StatusCancelled:
			if !t.RunsOnFailure() {
				return Verdict{Cancel: true, By: d.ID, Reason: fmt.Sprintf("dependency %s is %s", d.ID, d.Status)}
			}
			by, failed = d.ID, d.ID
		default:
			return Verdict{}
		}
	}
	v := Verdict{Release: true, By: by}
	if failed != "" {
		v.Reason = fmt.Sprintf("dependency %s failed; on_dependency_failure run", failed)
	}
	return v
}

// ReleaseTask settles a waiting task by its dependencies' states: queued
// when they allow it, cancelled when one failed.
type ReleaseTask struct {
	ID   string
	Deps []Dependency
}

// TaskID implements Command.
func (c ReleaseTask) TaskID() string { return c.ID }

// Decide implements Command.
func (c ReleaseTask) Decide(t *Task, _ time.Time) ([]Event, error) {
	if err := need(t, c.ID, "release", StatusWaiting); err != nil {
		return nil, err
	}
	v := Judge(t, c.Deps)
	switch {
	case v.Cancel:
		return []Event{TaskCancelled{By: "hub", Reason: v.Reason}}, nil
	case v.Release:
		return []Event{TaskReleased{By: v.By, Reason: v.Reason}}, nil
	}
	return nil, &StateError{TaskID: c.ID, Status: t.Status, Command: "release (dependencies still open):"}
}

// duplicateOf reports whether a submit repeats the one that made t: the
// same idempotency key, or the same request id (a retried command).
func (c SubmitTask) duplicateOf(t *Task) bool {
	if k := c.workflow().IdempotencyKey; k != "" && t.Extras != nil && t.IdempotencyKey == k {
		return true
	}
	return c.RequestID != "" && t.RequestID == c.RequestID && t.SubmittedBy == c.SubmittedBy
}
