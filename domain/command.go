package domain

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Command is a request to change one task. Decide returns the events that
// carry it out against the task's current state (nil if the task does not
// exist), or a typed error; it never changes t.
type Command interface {
	TaskID() string
	Decide(t *Task, now time.Time) ([]Event, error)
}

// SubmitTask creates a task with a caller-chosen id.
type SubmitTask struct {
	ID                 string
	Description        string
	Priority           Priority
	Metadata           json.RawMessage
	NeededCapabilities []string
	MaxRetries         *int
	CompleteBy         *time.Time
	SubmittedBy        string
	// RunAt holds the task back until then (a delayed task); nil or a
	// past time: at once.
	RunAt *time.Time
	// RetryBase and RetryMax override the hub's backoff for this task.
	RetryBase, RetryMax *time.Duration
	// Flow ties the task to others; Open are its dependencies that were
	// not complete when the caller looked (the task starts waiting on them).
	Flow Workflow
	Open []string
	// RequestID is the submit's: a retry with it answers the first task.
	RequestID string
}

func (c SubmitTask) workflow() *Workflow { return &c.Flow }

// TaskID implements Command.
func (c SubmitTask) TaskID() string { return c.ID }

// Validate checks every field and reports all problems at once.
func (c SubmitTask) Validate(now time.Time) error {
	v := &ValidationError{}
	desc := strings.TrimSpace(c.Description)
	switch {
	case desc == "":
		v.Add("description", "required", "description is required and must not be blank")
	case !utf8.ValidString(c.Description):
		v.Add("description", "invalid", "description must be valid UTF-8")
	case strings.ContainsRune(c.Description, 0):
		v.Add("description", "invalid", "description must not contain NUL (U+0000)")
	case utf8.RuneCountInString(c.Description) > MaxDescriptionLength:
		v.Add("description", "too_long", fmt.Sprintf("description must be at most %d characters", MaxDescriptionLength))
	}
	if !c.Priority.Valid() {
		v.Add("priority", "invalid", "priority must be one of urgent, high, normal, low")
	}
	if c.MaxRetries != nil && (*c.MaxRetries < 0 || *c.MaxRetries > MaxRetriesLimit) {
		v.Add("max_retries", "out_of_range", fmt.Sprintf("max_retries must be between 0 and %d", MaxRetriesLimit))
	}
	if c.CompleteBy != nil && !c.CompleteBy.After(now) {
		v.Add("complete_by", "invalid", "complete_by must be in the future")
	} else if c.CompleteBy != nil && c.CompleteBy.Year() > 9999 {
		v.Add("complete_by", "out_of_range", "complete_by must be before the year 10000")
	}
	validateRunAt(v, c.RunAt, c.CompleteBy)
	validateBackoff(v, c.RetryBase, c.RetryMax)
	if len(c.Metadata) > MaxMetadataBytes {
		v.Add("metadata", "too_long", fmt.Sprintf("metadata must be at most %d bytes of JSON", MaxMetadataBytes))
	}
	ValidateCapabilities(v, "needed_capabilities", c.NeededCapabilities)
	c.Flow.Check(v, c.ID)
	return v.Err()
}

func validateRunAt(v *ValidationError, runAt, completeBy *time.Time) {
	switch {
	case runAt == nil:
	case runAt.Year() > 9999:
		v.Add("run_at", "out_of_range", "run_at must be before the year 10000")
	case completeBy != nil && !runAt.Before(*completeBy):
		v.Add("run_at", "invalid", "run_at must be before complete_by")
	}
}

// ValidateCapabilities checks a list of capabilities named field (a
// task's needed_capabilities, an agent's capabilities): at most
// MaxCapabilities, each not blank and at most MaxCapabilityLength bytes.
// Items are named field[i].
func ValidateCapabilities(v *ValidationError, field string, caps []string) {
	if len(caps) > MaxCapabilities {
		v.Add(field, "too_long", fmt.Sprintf("%d given, at most %d", len(caps), MaxCapabilities))
		return
	}
	for i, c := range caps {
		item := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case strings.TrimSpace(c) == "":
			v.Add(item, "required", "must not be blank")
		case len(c) > MaxCapabilityLength:
			v.Add(item, "too_long", fmt.Sprintf("%d bytes, at most %d", len(c), MaxCapabilityLength))
		}
	}
}

// Decide implements Command.
func (c SubmitTask) Decide(t *Task, now time.Time) ([]Event, error) {
	if t != nil && c.duplicateOf(t) {
		return nil, nil // answered with the first task
	}
	if t != nil {
		return nil, &StateError{TaskID: c.ID, Status: t.Status, Command: "submit"}
	}
	if err := c.Validate(now); err != nil {
		return nil, err
	}
	maxRetries := DefaultMaxRetries
	if c.MaxRetries != nil {
		maxRetries = *c.MaxRetries
	}
	submitted := TaskSubmitted{
		Description:        c.Description,
		Priority:           c.Priority,
		Metadata:           c.Metadata,
		NeededCapabilities: sortedSet(c.NeededCapabilities),
		MaxRetries:         int32(maxRetries), // validated: 0 to MaxRetriesLimit
		MaxReclaims:        DefaultMaxReclaims,
		CompleteBy:         c.CompleteBy,
		SubmittedBy:        c.SubmittedBy,
		RunAt:              c.RunAt,
		RetryBase:          durationOf(c.RetryBase),
		RetryMax:           durationOf(c.RetryMax),
		Workflow:           c.Flow.stored(),
	}
	if len(c.Open) > 0 {
		return []Event{submitted, TaskWaiting{On: c.Open}}, nil
	}
	return []Event{submitted}, nil
}

// AssignTask gives a queued task to an agent. Accepted marks it accepted
// at once (the agent's implied_accept).
type AssignTask struct {
	ID, AgentID string
	Accepted    bool
}

// TaskID implements Command.
func (c AssignTask) TaskID() string { return c.ID }

// Decide implements Command.
func (c AssignTask) Decide(t *Task, _ time.Time) ([]Event, error) {
	if err := need(t, c.ID, "assign", StatusQueued); err != nil {
		return nil, err
	}
	if c.AgentID == "" {
		return nil, fieldError("agent_id", "required", "agent_id is required")
	}
	return []Event{TaskAssigned{AgentID: c.AgentID, Generation: t.Generation + 1, Accepted: c.Accepted}}, nil
}

// AcceptTask records that the assigned agent started work.
type AcceptTask struct {
	ID, AgentID string
	Generation  uint64
}

// TaskID implements Command.
func (c AcceptTask) TaskID() string { return c.ID }

// Decide implements Command. Accepting again what the agent already
// accepted (a retry whose answer was lost) changes nothing and succeeds.
func (c AcceptTask) Decide(t *Task, _ time.Time) ([]Event, error) {
	if t != nil && t.Status == StatusWorking && t.Generation == c.Generation && t.AssignedTo == c.AgentID {
		return nil, nil
	}
	if err := fence(t, c.ID, c.AgentID, c.Generation, "accept", StatusAssigned); err != nil {
		return nil, err
	}
	return []Event{TaskAccepted{AgentID: c.AgentID, Generation: c.Generation}}, nil
}

// ReportProgress is an agent's heartbeat for a task it works on.
type ReportProgress struct {
	ID, AgentID string
	Generation  uint64
	Message     string
}

// TaskID implements Command.
func (c ReportProgress) TaskID() string { return c.ID }

// Decide implements Command.
func (c ReportProgress) Decide(t *Task, _ time.Time) ([]Event, error) {
	if err := fence(t, c.ID, c.AgentID, c.Generation, "report progress on", StatusAssigned, StatusWorking); err != nil {
		return nil, err
	}
	return []Event{TaskProgressed{AgentID: c.AgentID, Generation: c.Generation, Message: truncate(c.Message)}}, nil
}

// CompleteTask finishes a task with its result.
type CompleteTask struct {
	ID, AgentID string
	Generation  uint64
	Result      json.RawMessage
	Usage       *Usage
}

// TaskID implements Command.
func (c CompleteTask) TaskID() string { return c.ID }

// Decide implements Command.
func (c CompleteTask) Decide(t *Task, _ time.Time) ([]Event, error) {
	if err := fence(t, c.ID, c.AgentID, c.Generation, "complete", StatusAssigned, StatusWorking); err != nil {
		return nil, err
	}
	v := &ValidationError{}
	if len(c.Result) > MaxResultBytes {
		v.Add("result", "too_long", ResultTooLarge(len(c.Result)))
	}
	if c.Usage != nil {
		c.Usage.Check(v)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return []Event{TaskCompleted{AgentID: c.AgentID, Generation: c.Generation, Result: c.Result, Usage: c.Usage}}, nil
}

// FailTask records a failed attempt. The task is queued again while
// retries remain (retry_count < max_retries), to be handed out after the
// backoff's delay, else dead-lettered.
type FailTask struct {
	ID, AgentID string
	Generation  uint64
	Error       string
	// Backoff is the hub's policy (the task's own retry_base and
	// retry_max win); Jitter, in [0, 1), is the random share of it.
	Backoff Backoff
	Jitter  float64
}

// TaskID implements Command.
func (c FailTask) TaskID() string { return c.ID }

// Decide implements Command.
func (c FailTask) Decide(t *Task, now time.Time) ([]Event, error) {
	if err := fence(t, c.ID, c.AgentID, c.Generation, "fail", StatusAssigned, StatusWorking); err != nil {
		return nil, err
	}
	msg := truncate(c.Error)
	count := t.RetryCount + 1
	failed := TaskFailed{AgentID: c.AgentID, Generation: c.Generation, Error: msg, RetryCount: count}
	if count >= t.MaxRetries {
		return []Event{failed, TaskDeadLettered{Reason: "max_retries"}}, nil
	}
	retried := TaskRetried{Generation: t.Generation + 1}
	if d := c.Backoff.For(t).Delay(int(count), c.Jitter); d > 0 {
		retried.RunAfter = timePtr(now.Add(d))
	}
	return []Event{failed, retried}, nil
}

// ReclaimTask takes a task back from its agent (agent gone, acceptance
// timeout, no heartbeat, overdue). Reclaims count against max_reclaims so a
// task cannot bounce between dead agents forever.
type ReclaimTask struct{ ID, Reason string }

// TaskID implements Command.
func (c ReclaimTask) TaskID() string { return c.ID }

// Decide implements Command.
func (c ReclaimTask) Decide(t *Task, _ time.Time) ([]Event, error) {
	if err := need(t, c.ID, "reclaim", StatusAssigned, StatusWorking); err != nil {
		return nil, err
	}
	count := t.ReclaimCount + 1
	ev := TaskReclaimed{AgentID: t.AssignedTo, Reason: c.Reason, Generation: t.Generation + 1, ReclaimCount: count}
	if count > t.MaxReclaims {
		return []Event{ev, TaskDeadLettered{Reason: "max_reclaims"}}, nil
	}
	return []Event{ev}, nil
}

// DeclineTask gives an assignment back unstarted (the agent is busy): the
// task is queued again without counting a reclaim, and the agent is not
// flagged.
type DeclineTask struct {
	ID, AgentID string
	Generation  uint64
	Reason      string
}

// TaskID implements Command.
func (c DeclineTask) TaskID() string { return c.ID }

// Decide implements Command.
func (c DeclineTask) Decide(t *Task, _ time.Time) ([]Event, error) {
	if err := fence(t, c.ID, c.AgentID, c.Generation, "decline", StatusAssigned); err != nil {
		return nil, err
	}
	return []Event{TaskReclaimed{AgentID: c.AgentID, Reason: truncate("declined: " + c.Reason),
		Generation: t.Generation + 1, ReclaimCount: t.ReclaimCount}}, nil
}

// ExpireTask ends a task whose complete_by has passed: it is taken back
// from the agent holding it, if any, and dead-lettered with reason
// "overdue" (a retry brings it back without the passed deadline). A
// waiting task is cancelled instead: a retry would queue it before its
// dependencies completed.
type ExpireTask struct{ ID string }

// TaskID implements Command.
func (c ExpireTask) TaskID() string { return c.ID }

// Decide implements Command.
func (c ExpireTask) Decide(t *Task, now time.Time) ([]Event, error) {
	if err := need(t, c.ID, "expire", StatusWaiting, StatusQueued, StatusAssigned, StatusWorking); err != nil {
		return nil, err
	}
	if t.CompleteBy == nil || !now.After(*t.CompleteBy) {
		return nil, &StateError{TaskID: c.ID, Status: t.Status, Command: "expire a task not yet due:"}
	}
	if t.Status == StatusWaiting { // dead-lettered, a retry would run it before its dependencies
		return []Event{TaskCancelled{By: "hub", Reason: "overdue while waiting on its dependencies"}}, nil
	}
	var events []Event
	if t.Status.Active() {
		events = append(events, TaskReclaimed{AgentID: t.AssignedTo, Reason: "overdue",
			Generation: t.Generation + 1, ReclaimCount: t.ReclaimCount})
	}
	return append(events, TaskDeadLettered{Reason: "overdue"}), nil
}

// CompactTask summarises a finished task (completed or cancelled, and
// last changed before Before) into one TaskCompacted event; the store then
// drops the task's earlier events.
type CompactTask struct {
	ID     string
	Before time.Time
	Order  uint64
}

// TaskID implements Command.
func (c CompactTask) TaskID() string { return c.ID }

// Decide implements Command.
func (c CompactTask) Decide(t *Task, _ time.Time) ([]Event, error) {
	if err := need(t, c.ID, "compact", StatusCompleted, StatusCancelled); err != nil {
		return nil, err
	}
	if t.Compacted || !t.UpdatedAt.Before(c.Before) {
		return nil, &StateError{TaskID: c.ID, Status: t.Status, Command: "compact (too recent, or compacted)"}
	}
	return []Event{TaskCompacted{Task: *t.clone(), Order: c.Order}}, nil
}

// CancelTask ends a task that is not completed or cancelled yet.
type CancelTask struct{ ID, By, Reason string }

// TaskID implements Command.
func (c CancelTask) TaskID() string { return c.ID }

// Decide implements Command.
func (c CancelTask) Decide(t *Task, _ time.Time) ([]Event, error) {
	if err := need(t, c.ID, "cancel", StatusWaiting, StatusQueued, StatusAssigned, StatusWorking, StatusDeadLetter); err != nil {
		return nil, err
	}
	return []Event{TaskCancelled{By: c.By, Reason: truncate(c.Reason)}}, nil
}

// RetryTask brings a dead-lettered task back to the queue.
type RetryTask struct{ ID, By string }

// TaskID implements Command.
func (c RetryTask) TaskID() string { return c.ID }

// Decide implements Command.
func (c RetryTask) Decide(t *Task, _ time.Time) ([]Event, error) {
	if err := need(t, c.ID, "retry", StatusDeadLetter); err != nil {
		return nil, err
	}
	return []Event{TaskRequeued{By: c.By, Generation: t.Generation + 1}}, nil
}

// need checks that the task exists and has one of the allowed statuses.
func need(t *Task, id, command string, allowed ...Status) error {
	if t == nil {
		return &NotFoundError{TaskID: id}
	}
	if !slices.Contains(allowed, t.Status) {
		return &StateError{TaskID: id, Status: t.Status, Command: command}
	}
	return nil
}

// fence checks need, then that the report names the current generation
// and comes from the agent that holds the task.
func fence(t *Task, id, agentID string, gen uint64, command string, allowed ...Status) error {
	if err := need(t, id, command, allowed...); err != nil {
		return err
	}
	if gen != t.Generation {
		return &StaleGenerationError{TaskID: id, Got: gen, Current: t.Generation}
	}
	if agentID != t.AssignedTo {
		return &WrongAgentError{TaskID: id, Got: agentID, Holder: t.AssignedTo}
	}
	return nil
}

func fieldError(field, code, detail string) error {
	v := &ValidationError{}
	v.Add(field, code, detail)
	return v
}

// truncate keeps an agent-supplied message within MaxErrorLength bytes,
// cutting on a rune boundary.
func truncate(s string) string {
	if len(s) <= MaxErrorLength {
		return s
	}
	cut := MaxErrorLength
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func durationOf(d *time.Duration) Duration {
	if d == nil {
		return 0
	}
	return Duration(*d)
}

func sortStrings(s []string)      { slices.Sort(s) }
func compact(s []string) []string { return slices.Compact(s) }
