package ops

import (
	"encoding/json"
	"time"

	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol"
)

// The bodies of the operations. Fields are in the order of their JSON
// names, so that a struct encodes byte for byte as the map it replaced.

// ErrorBody is the body of every error reply. The log-level refusal adds
// the valid levels and modules.
type ErrorBody struct {
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
	// Needs is the role a 401 or 403 asks for: viewer or admin.
	Needs string `json:"needs,omitempty"`
	// RetryAfterS is a 429's wait in seconds, as its Retry-After header.
	RetryAfterS  int                 `json:"retry_after_s,omitempty"`
	Errors       []domain.FieldError `json:"errors,omitempty"`
	TaskID       string              `json:"task_id,omitempty"`
	Hint         string              `json:"hint,omitempty"`
	ValidLevels  []string            `json:"valid_levels,omitempty"`
	ValidModules []string            `json:"valid_modules,omitempty"`
}

// Health answers GET /health: 200 when the hub takes commands, else 503
// with the error (and detail).
type Health struct {
	Detail  string `json:"detail,omitempty"`
	Error   string `json:"error,omitempty"`
	LastSeq uint64 `json:"last_seq"`
	Service string `json:"service"`
	Status  string `json:"status"`
}

// SubmitRequest documents the submit body; the hub decodes it strictly
// field by field (docs/protocol.md, the submit body).
type SubmitRequest struct {
	Description        string          `json:"description"`
	Priority           string          `json:"priority,omitempty"`
	Metadata           json.RawMessage `json:"metadata,omitempty"`
	NeededCapabilities []string        `json:"needed_capabilities,omitempty"`
	MaxRetries         *int            `json:"max_retries,omitempty"`
	// CompleteBy and RunAt are epoch milliseconds or RFC 3339 strings.
	CompleteBy json.RawMessage `json:"complete_by,omitempty"`
	RunAt      json.RawMessage `json:"run_at,omitempty"`
	RetryBase  string          `json:"retry_base,omitempty"`
	RetryMax   string          `json:"retry_max,omitempty"`
	// DependsOn are task ids (or, in a batch, other tasks' ref) that must
	// complete first; OnDependencyFailure is cancel (default) or run.
	DependsOn           []string `json:"depends_on,omitempty"`
	OnDependencyFailure string   `json:"on_dependency_failure,omitempty"`
	GoalID              string   `json:"goal_id,omitempty"`
	// IdempotencyKey makes a repeated submit answer the first task.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Ref names the task within a batch, for its other tasks' depends_on.
	Ref string `json:"ref,omitempty"`
}

// MaxBatchSubmit bounds a batch submit.
const MaxBatchSubmit = 1000

// SubmitBatchRequest is a batch submit: each task as a single submit's body.
type SubmitBatchRequest struct {
	Tasks []SubmitRequest `json:"tasks"`
}

// SubmittedBatch answers a batch submit: every task, in the order given.
type SubmittedBatch struct {
	Count int         `json:"count"`
	Tasks []Submitted `json:"tasks"`
}

// Submitted answers a submit.
type Submitted struct {
	CreatedAt time.Time       `json:"created_at"`
	Priority  domain.Priority `json:"priority"`
	Status    domain.Status   `json:"status"`
	TaskID    string          `json:"task_id"`
	// Duplicate: an earlier submit with the same idempotency key made the
	// task (the answer is 200, not 201).
	Duplicate bool `json:"duplicate,omitempty"`
}

// ListQuery filters a task list; empty fields match everything.
type ListQuery struct {
	Status     string `json:"status,omitempty"`
	Priority   string `json:"priority,omitempty"`
	AssignedTo string `json:"assigned_to,omitempty"`
	// Order is queue (the default: by priority, then age) or updated
	// (the latest changed first: recent completions); Limit keeps the
	// first that many (0: all).
	Order string `json:"order,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// TaskList is a list of tasks in queue order.
type TaskList struct {
	Count int            `json:"count"`
	Tasks []*domain.Task `json:"tasks"`
}

// Retried answers a retry.
type Retried struct {
	Priority domain.Priority `json:"priority"`
	Status   string          `json:"status"`
	TaskID   string          `json:"task_id"`
}

// CancelRequest is the optional body of a cancel.
type CancelRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Cancelled answers a cancel.
type Cancelled struct {
	Status domain.Status `json:"status"`
	TaskID string        `json:"task_id"`
}

// AgentList lists agents.
type AgentList struct {
	Agents []*domain.Agent `json:"agents"`
	Count  int             `json:"count"`
	// LastSeen is when the hub last heard from each connected agent (any
	// request, a heartbeat or more), by agent id: the hub's memory, not an
	// event.
	LastSeen map[string]time.Time `json:"last_seen"`
}

// TokenRequest names a new token: {"agent_id": "a1"} for an agent (the
// original's form), or a name and a role (agent, viewer or admin).
type TokenRequest struct {
	AgentID string `json:"agent_id,omitempty"`
	Name    string `json:"name,omitempty"`
	Role    string `json:"role,omitempty"` // agent (the default), viewer or admin
}

// TokenCreated answers a token create: the token is shown once.
type TokenCreated struct {
	AgentID string `json:"agent_id,omitempty"` // an agent's token: its agent
	Name    string `json:"name"`
	Role    string `json:"role"`
	Token   string `json:"token"`
}

// TokenView is what people see of a token: never the token or its hash.
type TokenView struct {
	AgentID     string `json:"agent_id,omitempty"` // an agent's token: its agent
	Name        string `json:"name"`
	Role        string `json:"role"`
	TokenPrefix string `json:"token_prefix"`
	CreatedAt   string `json:"created_at"`
}

// TokenList lists the named tokens by prefix.
type TokenList struct {
	Count  int         `json:"count"`
	Tokens []TokenView `json:"tokens"`
}

// TokenRevoked answers a token revoke.
type TokenRevoked struct {
	AgentID string `json:"agent_id,omitempty"` // an agent's token: its agent
	Name    string `json:"name"`
	Role    string `json:"role"`
	Status  string `json:"status"`
}

// LogLevels are the log levels in force.
type LogLevels struct {
	Level        string            `json:"level"`
	Modules      map[string]string `json:"modules"`
	ValidLevels  []string          `json:"valid_levels"`
	ValidModules []string          `json:"valid_modules"`
}

// LevelRequest sets the level of every module, or of one.
type LevelRequest struct {
	Level  string `json:"level"`
	Module string `json:"module,omitempty"`
}

// LevelSet answers a level change; module "*" is every module.
type LevelSet struct {
	Level  string `json:"level"`
	Module string `json:"module"`
}

// CompactResult is what one compaction did (the hub's CompactResult).
type CompactResult struct {
	Before       time.Time `json:"before"`
	Compacted    int       `json:"compacted"`
	Failed       int       `json:"failed"`
	EventsBefore uint64    `json:"events_before"`
	EventsAfter  uint64    `json:"events_after"`
}

// Compacted answers a compaction.
type Compacted struct {
	Result CompactResult `json:"result"`
	Status string        `json:"status"`
}

// BackedUp answers a backup: the file written and its size.
type BackedUp struct {
	Bytes  int64  `json:"bytes"`
	File   string `json:"file"`
	Path   string `json:"path"`
	Status string `json:"status"`
}

// RestoreRequest names a backup in <data-dir>/backups.
type RestoreRequest struct {
	File string `json:"file"`
}

// Restoring answers a restore: the hub stops, restores and starts again.
type Restoring struct {
	File   string `json:"file"`
	Status string `json:"status"`
}

// UsageQuery filters GET /api/usage: one agent's rows, and the days from
// since to until (YYYY-MM-DD, UTC, inclusive).
type UsageQuery struct {
	AgentID string `json:"agent_id,omitempty"`
	Since   string `json:"since,omitempty"`
	Until   string `json:"until,omitempty"`
}

// UsageTotal sums usage rows.
type UsageTotal struct {
	Tasks        int     `json:"tasks"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
}

// Usage answers GET /api/usage: a row per day and agent, the totals per
// agent and in all, and today's budget state.
type Usage struct {
	Days    []projections.UsageRow `json:"days"`
	ByAgent map[string]UsageTotal  `json:"by_agent"`
	Total   UsageTotal             `json:"total"`
	// DailyBudgetUSD is agents.daily_budget_usd (0: none), Budgets the
	// agents' own (agents.budgets); OverBudget are the agents that spent
	// theirs today, to whom nothing is assigned.
	DailyBudgetUSD float64            `json:"daily_budget_usd"`
	Budgets        map[string]float64 `json:"budgets"`
	OverBudget     []string           `json:"over_budget"`
}

// AgentReset answers an agent reset: the tasks taken back from it, and
// whether its unresponsive flag was cleared.
type AgentReset struct {
	AgentID   string   `json:"agent_id"`
	Reclaimed []string `json:"reclaimed"`
	Unflagged bool     `json:"unflagged"`
}

// PushTaskRequest is a submit body with the agent that alone may run it.
type PushTaskRequest struct {
	AgentID string `json:"agent_id"`
	SubmitRequest
}

// PushedTask answers a push-task: the task is queued for that agent.
type PushedTask struct {
	Submitted
	AgentID string `json:"agent_id"`
}

// Settings are the run-time settings with their values in force.
type Settings struct {
	Settings []Setting `json:"settings"`
}

// Setting is one run-time setting: its value in force, the configuration
// file's, and whether the value came from the file or a run-time change
// (and when and by whom it was made).
type Setting struct {
	Key       string     `json:"key"`
	Value     string     `json:"value"`
	FileValue string     `json:"file_value"`
	Source    string     `json:"source"`
	ChangedAt *time.Time `json:"changed_at,omitempty"`
	ChangedBy string     `json:"changed_by,omitempty"`
	Summary   string     `json:"summary"`
}

// SettingRequest is a setting's new value, in the configuration file's
// text form: "45s", "2.5", a repository URL.
type SettingRequest struct {
	Value string `json:"value"`
}

// OnboardRequest names a new agent and what it can do; Exec or Wake, the
// command its sidecar runs for each task, goes into the sidecar
// configuration (the hub keeps neither).
type OnboardRequest struct {
	AgentID      string   `json:"agent_id"`
	Capabilities []string `json:"capabilities,omitempty"`
	MaxTasks     int      `json:"max_tasks,omitempty"`
	Exec         string   `json:"exec,omitempty"`
	Wake         string   `json:"wake,omitempty"`
}

// Onboarded is a registered agent: its token (shown once), where the hub
// is, the repository to work in, and a sidecar configuration file that
// runs it as written (the command left for the operator to fill in).
type Onboarded struct {
	AgentID       string `json:"agent_id"`
	Token         string `json:"token"`
	NATSURL       string `json:"nats_url"`
	HubAPIURL     string `json:"hub_api_url"`
	DefaultRepo   string `json:"default_repo"`
	SidecarConfig string `json:"sidecar_config"`
}

// ReservationQuery filters the reservations by project ("" for all).
type ReservationQuery struct {
	Project string `json:"project,omitempty"`
}

// Reservations answers reservation.list: the live reservations.
type Reservations struct {
	Reservations []protocol.Reservation `json:"reservations"`
	Count        int                    `json:"count"`
}

// Released answers a release: what was released.
type Released struct {
	Status  string `json:"status"`
	Project string `json:"project"`
	ID      string `json:"id"`
}

// MessageQuery filters the kept messages (all optional): by sender,
// recipient, thread, text (in the subject or body, any case) and time;
// after is the sequence cursor of the page before (next of its answer),
// limit at most 200 (default 50).
type MessageQuery struct {
	From   string    `json:"from,omitempty"`
	To     string    `json:"to,omitempty"`
	Thread string    `json:"thread,omitempty"`
	Q      string    `json:"q,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	Until  time.Time `json:"until,omitzero"`
	After  uint64    `json:"after,omitempty"`
	Limit  int       `json:"limit,omitempty"`
}

// Messages is a page of messages, oldest first, and the next page's
// cursor (absent on the last page).
type Messages struct {
	Messages []protocol.Message `json:"messages"`
	Count    int                `json:"count"`
	Next     uint64             `json:"next,omitempty"`
}

// Thread is a thread's every kept message, in order.
type Thread struct {
	ThreadID string             `json:"thread_id"`
	Messages []protocol.Message `json:"messages"`
}

// TimelineEntry is one event of a task's timeline.
type TimelineEntry struct {
	Seq       uint64          `json:"seq"`
	Time      time.Time       `json:"time"`
	Type      string          `json:"type"`
	Version   int             `json:"v"`
	ID        string          `json:"id"`
	RequestID string          `json:"request_id,omitempty"`
	Data      json.RawMessage `json:"data"`
}

// Timeline answers task.timeline: every stored event of the task, oldest
// first (a compacted task's one summary).
type Timeline struct {
	TaskID string          `json:"task_id"`
	Events []TimelineEntry `json:"events"`
}

// GoalRequest creates a goal (id "": one is made).
type GoalRequest struct {
	ID          string `json:"id,omitempty"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
}

// Goal is a goal with its tasks: counted by status, and each with what it
// depends on (the goal's DAG; a list leaves the tasks out).
type Goal struct {
	domain.Goal
	Counts map[domain.Status]int `json:"counts"`
	Tasks  []GoalTask            `json:"tasks,omitempty"`
}

// GoalTask is one task of a goal's DAG.
type GoalTask struct {
	ID          string        `json:"id"`
	Description string        `json:"description,omitempty"`
	Status      domain.Status `json:"status"`
	DependsOn   []string      `json:"depends_on,omitempty"`
}

// Goals answers goal.list.
type Goals struct {
	Goals []Goal `json:"goals"`
	Count int    `json:"count"`
}

// ScheduleRequest adds a schedule: exactly one of cron (five fields, or
// a descriptor such as @hourly) and every (a duration, at least 1s); task
// is a submit body without depends_on and idempotency_key; catch_up says
// what a tick missed while the hub was down does: once (default) or skip.
type ScheduleRequest struct {
	Name    string          `json:"name"`
	Cron    string          `json:"cron,omitempty"`
	Every   string          `json:"every,omitempty"`
	CatchUp string          `json:"catch_up,omitempty"`
	Task    json.RawMessage `json:"task"`
}

// Schedule is a schedule as it stands.
type Schedule struct {
	Name      string          `json:"name"`
	Cron      string          `json:"cron,omitempty"`
	Every     string          `json:"every,omitempty"`
	CatchUp   string          `json:"catch_up"`
	Task      json.RawMessage `json:"task"`
	CreatedBy string          `json:"created_by,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	LastTick  *time.Time      `json:"last_tick,omitempty"`
	NextTick  *time.Time      `json:"next_tick,omitempty"`
	Deleted   bool            `json:"deleted,omitempty"`
}

// Schedules answers schedule.list.
type Schedules struct {
	Schedules []Schedule `json:"schedules"`
	Count     int        `json:"count"`
}

// ChannelRequest creates a channel.
type ChannelRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Channels answers channel.list.
type Channels struct {
	Channels []protocol.Channel `json:"channels"`
	Count    int                `json:"count"`
}

// HistoryQuery asks for a channel's last messages (1 to 200, 50 when left out).
type HistoryQuery struct {
	Limit int `json:"limit,omitempty"`
}

// ChannelHistory is a channel's last messages, oldest first.
type ChannelHistory struct {
	Channel  string             `json:"channel"`
	Messages []protocol.Message `json:"messages"`
	Count    int                `json:"count"`
}

// Subscriptions are the channels an agent has joined.
type Subscriptions struct {
	AgentID  string   `json:"agent_id"`
	Channels []string `json:"channels"`
}
