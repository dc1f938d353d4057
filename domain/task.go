package domain

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Priority orders the queue: urgent before high before normal before low.
type Priority int8

// The four priorities, in queue order.
const (
	PriorityUrgent Priority = iota
	PriorityHigh
	PriorityNormal
	PriorityLow
)

// PriorityCount is the number of priorities.
const PriorityCount = 4

// Priorities lists every priority in queue order.
var Priorities = [PriorityCount]Priority{PriorityUrgent, PriorityHigh, PriorityNormal, PriorityLow}

var priorityNames = [...]string{"urgent", "high", "normal", "low"}

// String returns the priority's name.
func (p Priority) String() string {
	if p < PriorityUrgent || p > PriorityLow {
		return fmt.Sprintf("priority(%d)", int(p))
	}
	return priorityNames[p]
}

// Valid reports whether p is one of the four priorities.
func (p Priority) Valid() bool { return p >= PriorityUrgent && p <= PriorityLow }

// ParsePriority turns a name (urgent, high, normal, low) into a Priority.
func ParsePriority(s string) (Priority, bool) {
	for i, name := range priorityNames {
		if name == s {
			return Priority(i), true
		}
	}
	return 0, false
}

// MarshalJSON writes the priority's name.
func (p Priority) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// UnmarshalJSON reads a priority name.
func (p *Priority) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode priority: %w", err)
	}
	v, ok := ParsePriority(s)
	if !ok {
		return fmt.Errorf("decode priority: unknown priority %q", s)
	}
	*p = v
	return nil
}

// Status is where a task is in its life cycle.
type Status string

// The task statuses.
const (
	StatusWaiting    Status = "waiting" // on its dependencies: not handed out, not counted as queued
	StatusQueued     Status = "queued"
	StatusAssigned   Status = "assigned"
	StatusWorking    Status = "working"
	StatusCompleted  Status = "completed"
	StatusDeadLetter Status = "dead_letter"
	StatusCancelled  Status = "cancelled"
)

// Statuses lists every status.
var Statuses = []Status{StatusWaiting, StatusQueued, StatusAssigned, StatusWorking, StatusCompleted, StatusDeadLetter, StatusCancelled}

// ParseStatus reports whether s names a status.
func ParseStatus(s string) (Status, bool) {
	for _, st := range Statuses {
		if string(st) == s {
			return st, true
		}
	}
	return "", false
}

// Active reports whether an agent holds the task (assigned or working).
func (s Status) Active() bool { return s == StatusAssigned || s == StatusWorking }

// Final reports whether nothing more can happen to the task.
func (s Status) Final() bool { return s == StatusCompleted || s == StatusCancelled }

// Defaults and limits for tasks.
const (
	DefaultMaxRetries    = 3
	DefaultMaxReclaims   = 5
	MaxDescriptionLength = 10000
	MaxCapabilityLength  = 128
	MaxCapabilities      = 32
	MaxMetadataBytes     = 64 << 10
	MaxRetriesLimit      = 100
	MaxHistory           = 50
	MaxErrorLength       = 2000
	// MaxMessageBytes is the largest message the hub takes or stores: the
	// NATS server's max_payload is set to it.
	MaxMessageBytes = 4 << 20
	// MaxResultBytes is the largest result a task can have, as JSON:
	// max_payload less 1 MiB for the message around it (the report, the
	// event envelope, or a compacted task with its description, metadata
	// and history).
	MaxResultBytes = MaxMessageBytes - 1<<20
)

// ResultTooLarge says that a result of n bytes is over MaxResultBytes.
func ResultTooLarge(n int) string {
	return fmt.Sprintf("result is %d bytes, limit %d (max_payload %d less 1 MiB for the message around it)",
		n, MaxResultBytes, MaxMessageBytes)
}

// Task is the state of one task, built by applying its events in order.
type Task struct {
	ID                 string          `json:"id"`
	Description        string          `json:"description"`
	Metadata           json.RawMessage `json:"metadata,omitempty"`
	NeededCapabilities []string        `json:"needed_capabilities"`
	CompleteBy         *time.Time      `json:"complete_by,omitempty"`
	// *Extras are what few tasks set (their own backoff, their ties to
	// other work), nil for most: one word, not eight.
	*Extras
	// RunAfter holds a queued task back until then: a backoff after a
	// failure, or the submit's run_at.
	RunAfter    *time.Time      `json:"run_after,omitempty"`
	Status      Status          `json:"status"`
	Generation  uint64          `json:"generation"`
	AssignedTo  string          `json:"assigned_to,omitempty"`
	AssignedAt  *time.Time      `json:"assigned_at,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`
	Usage       *Usage          `json:"usage,omitempty"` // what the completing attempt reported it cost
	LastError   string          `json:"last_error,omitempty"`
	SubmittedBy string          `json:"submitted_by,omitempty"`
	RequestID   string          `json:"request_id,omitempty"` // the submit's: it follows the task
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	QueuedAt    time.Time       `json:"queued_at"` // when it last entered the queue
	History     []HistoryEntry  `json:"history"`
	// The small fields last, packed into two words (a queued task's value
	// is one allocation of the 352-byte class: docs/store.md).
	MaxRetries   int32    `json:"max_retries"`
	MaxReclaims  int32    `json:"max_reclaims"`
	RetryCount   int32    `json:"retry_count"`
	ReclaimCount int32    `json:"reclaim_count"`
	Priority     Priority `json:"priority"`
	Compacted    bool     `json:"compacted,omitempty"` // its events were summarised
}

// Extras are the fields most tasks leave empty.
type Extras struct {
	RetryOverride
	Workflow
}

// RetryOverride is a task's own backoff, from its submit.
type RetryOverride struct {
	RetryBase Duration `json:"retry_base,omitempty"`
	RetryMax  Duration `json:"retry_max,omitempty"`
}

// Usage is what one attempt at a task cost, as its agent reports it.
type Usage struct {
	InputTokens  int64   `json:"input_tokens,omitempty"`
	OutputTokens int64   `json:"output_tokens,omitempty"`
	CostUSD      float64 `json:"cost_usd,omitempty"`
	Model        string  `json:"model,omitempty"`
}

// MaxModelChars bounds a usage's model name.
const MaxModelChars = 128

// Check says what is wrong with a reported usage, field by field.
func (u Usage) Check(v *ValidationError) {
	if u.InputTokens < 0 {
		v.Add("usage.input_tokens", "out_of_range", "input_tokens must not be negative")
	}
	if u.OutputTokens < 0 {
		v.Add("usage.output_tokens", "out_of_range", "output_tokens must not be negative")
	}
	if u.CostUSD < 0 || math.IsNaN(u.CostUSD) || math.IsInf(u.CostUSD, 0) || u.CostUSD > 1e9 {
		v.Add("usage.cost_usd", "out_of_range", "cost_usd must be a number from 0 to 1e9")
	}
	if utf8.RuneCountInString(u.Model) > MaxModelChars {
		v.Add("usage.model", "too_long", fmt.Sprintf("model must be at most %d characters", MaxModelChars))
	}
}

// Tokens is the usage's input and output tokens together (the seed's
// tokens_used).
func (u *Usage) Tokens() int64 {
	if u == nil {
		return 0
	}
	return u.InputTokens + u.OutputTokens
}

// HistoryEntry is one line of a task's recent history, oldest first. The
// projection keeps the last MaxHistory entries; the full timeline is the
// event stream itself (agentcom replay --task).
type HistoryEntry struct {
	Event     string    `json:"event"`
	At        time.Time `json:"at"`
	AgentID   string    `json:"agent_id,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
}

// Due reports whether a queued task may be handed out at now.
func (t *Task) Due(now time.Time) bool { return t.RunAfter == nil || !now.Before(*t.RunAfter) }

// clone returns a copy that shares no mutable slice with t.
func (t *Task) clone() *Task {
	c := *t
	c.History = append(make([]HistoryEntry, 0, len(t.History)+1), t.History...)
	return &c
}
