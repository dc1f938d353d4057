// Package protocol holds the messages that the hub and a sidecar exchange
// over NATS (subjects in broker/subjects.go; prose in docs/protocol.md).
//
// A sidecar sends requests on agentcom.agent.<agent id>.<verb> and waits
// for the hub's reply. Every reply carries the Agentcom-Status header
// (an HTTP status code); a non-2xx reply's body is an Error. The hub
// pushes assignments and aborts on agentcom.push.<agent id>.<kind>.
package protocol

import (
	"encoding/json"
	"slices"
	"time"
)

// Headers.
const (
	HeaderStatus    = "Agentcom-Status"
	HeaderRequestID = "Agentcom-Request-Id"
	// HeaderMCPTool names the MCP tool a command was made for (agentcom
	// mcp): the hub times it as an mcp.tool span.
	HeaderMCPTool = "Agentcom-Mcp-Tool"
)

// Holding is what a sidecar says it holds when it says hello.
type Holding struct {
	TaskID     string `json:"task_id"`
	Generation uint64 `json:"generation"`
	// Status is "assigned" (not started) or "working".
	Status string `json:"status"`
}

// Hello identifies a sidecar (verb hello). It is sent at every connect and
// reconnect; a new Session replaces any earlier connection of the agent.
// MaxTasks is how many tasks the agent runs at once (its slots; 0: one).
// Held lists every task it holds; Holding is how a sidecar from before
// slots named its one task (still read).
type Hello struct {
	Name         string   `json:"name,omitempty"`
	Capabilities []string `json:"capabilities"`
	Session      string   `json:"session"`
	MaxTasks     int      `json:"max_tasks,omitempty"`
	// Batch asks for several assignments in one push (kind tasks,
	// Assignments) instead of one push each (kind task).
	Batch bool `json:"batch,omitempty"`
	// ImpliedAccept makes an assignment count as accepted when it is made:
	// the agent sends no accept, and the task's lease is the stuck
	// threshold from then on.
	ImpliedAccept bool      `json:"implied_accept,omitempty"`
	Held          []Holding `json:"held,omitempty"`
	Holding       *Holding  `json:"holding,omitempty"`
}

// Holdings is every task the hello reports: Held, and Holding if it is
// not among them.
func (h Hello) Holdings() []Holding {
	out := append([]Holding(nil), h.Held...)
	if h.Holding != nil && !slices.ContainsFunc(out, func(x Holding) bool { return x.TaskID == h.Holding.TaskID }) {
		out = append(out, *h.Holding)
	}
	return out
}

// Recovery actions for a held task.
const (
	ActionContinue = "continue"
	ActionAbort    = "abort"
)

// Settled is the hub's answer about one held task: continue or abort.
type Settled struct {
	TaskID     string `json:"task_id"`
	Generation uint64 `json:"generation"`
	Action     string `json:"action"`
	Reason     string `json:"reason,omitempty"`
}

// HelloReply tells the sidecar how often to heartbeat and to report
// progress, and what to do with each task it holds (Tasks, in the order
// of the hello's holdings). Action and Reason repeat the answer when the
// hello reported exactly one task, for sidecars from before slots.
type HelloReply struct {
	Timings
	Action string    `json:"action,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Tasks  []Settled `json:"tasks,omitempty"`
}

// Timings are the intervals the hub asks of a sidecar, in its hello's
// answer and again in every heartbeat's, so that a run-time change
// reaches a connected sidecar within one heartbeat.
type Timings struct {
	HeartbeatIntervalMS int64 `json:"heartbeat_interval_ms"`
	// StuckThresholdMS is how long a working task may go without progress
	// before the hub takes it back; ProgressIntervalMS (a third of it) is
	// the longest wait between progress reports that keeps well inside it.
	StuckThresholdMS   int64 `json:"stuck_threshold_ms,omitempty"`
	ProgressIntervalMS int64 `json:"progress_interval_ms,omitempty"`
}

// HeartbeatReply answers a heartbeat: the hub's time and the timings in
// force (absent from hubs before run-time settings).
type HeartbeatReply struct {
	Status string `json:"status"`
	Time   string `json:"time"`
	Timings
}

// ProgressDivisor is how many progress reports a sidecar sends, at least,
// within the stuck threshold: the hub asks for one every
// stuck_threshold / ProgressDivisor.
const ProgressDivisor = 3

// Heartbeat keeps a session alive (verb heartbeat). Bye ends it (verb bye).
type Heartbeat struct {
	Session string `json:"session"`
}

// TaskRef names one assignment of a task (verb accept).
type TaskRef struct {
	TaskID     string `json:"task_id"`
	Generation uint64 `json:"generation"`
	Reason     string `json:"reason,omitempty"`
}

// Decline gives an assignment back unstarted (verb decline). With reason
// busy, Holding lists the tasks the agent counts as taking its room, so
// the hub can tell a stale claim (tasks it already took back or saw end)
// from a real one.
type Decline struct {
	TaskID     string    `json:"task_id"`
	Generation uint64    `json:"generation"`
	Reason     string    `json:"reason"`
	Holding    []Holding `json:"holding,omitempty"`
}

// Decline reasons.
const (
	DeclineBusy          = "busy"            // max_tasks tasks held already
	DeclineShuttingDown  = "shutting_down"   // the sidecar is stopping
	DeclineStateNotSaved = "state_not_saved" // the state file could not be written
)

// Progress is a heartbeat for the task at work (verb progress): it extends
// the task's lease.
type Progress struct {
	TaskID     string `json:"task_id"`
	Generation uint64 `json:"generation"`
	Message    string `json:"message,omitempty"`
}

// Complete finishes a task (verb complete).
type Complete struct {
	TaskID     string          `json:"task_id"`
	Generation uint64          `json:"generation"`
	Result     json.RawMessage `json:"result,omitempty"`
	Usage      *Usage          `json:"usage,omitempty"`
}

// Usage is what an attempt cost, as the agent reports it with its
// completion: tokens in and out, the cost in US dollars, the model.
type Usage struct {
	InputTokens  int64   `json:"input_tokens,omitempty"`
	OutputTokens int64   `json:"output_tokens,omitempty"`
	CostUSD      float64 `json:"cost_usd,omitempty"`
	Model        string  `json:"model,omitempty"`
}

// Fail reports a failed attempt (verb fail).
type Fail struct {
	TaskID     string `json:"task_id"`
	Generation uint64 `json:"generation"`
	Error      string `json:"error"`
}

// Assignment is pushed to an agent (push kind task). The agent must accept
// within the acceptance timeout, or decline.
type Assignment struct {
	TaskID             string          `json:"task_id"`
	Generation         uint64          `json:"generation"`
	Description        string          `json:"description"`
	Priority           string          `json:"priority"`
	Metadata           json.RawMessage `json:"metadata,omitempty"`
	NeededCapabilities []string        `json:"needed_capabilities,omitempty"`
	CompleteBy         *time.Time      `json:"complete_by,omitempty"`
	RequestID          string          `json:"request_id,omitempty"`
	// Dependencies are the tasks this one waited for, with their results
	// (domain.MaxDependencyResults in all; a result past it is left out,
	// result_omitted, for the agent to read with task.get).
	Dependencies []DependencyResult `json:"dependencies,omitempty"`
}

// DependencyResult is one dependency of an assigned task as it ended.
type DependencyResult struct {
	TaskID        string          `json:"task_id"`
	Status        string          `json:"status"`
	Result        json.RawMessage `json:"result,omitempty"`
	ResultOmitted bool            `json:"result_omitted,omitempty"`
}

// Assignments are several assignments in one push (push kind tasks), to
// an agent whose hello asked for batch.
type Assignments struct {
	Tasks []Assignment `json:"tasks"`
}

// Report is one outcome in a batched report (verb report): Verb is
// accept, progress, complete or fail, with that verb's fields.
type Report struct {
	Verb       string          `json:"verb"`
	TaskID     string          `json:"task_id"`
	Generation uint64          `json:"generation"`
	Result     json.RawMessage `json:"result,omitempty"`
	Usage      *Usage          `json:"usage,omitempty"` // with a complete
	Error      string          `json:"error,omitempty"`
	Message    string          `json:"message,omitempty"`
}

// Reports is the body of verb report: up to MaxReports outcomes, each
// fenced by its own generation and answered on its own.
type Reports struct {
	Reports []Report `json:"reports"`
}

// MaxReports bounds one batched report.
const MaxReports = 1000

// ReportResult answers one Report: its status (as a reply to the single
// verb would carry), and the task's status after it or the error code.
type ReportResult struct {
	TaskID     string `json:"task_id"`
	Generation uint64 `json:"generation"`
	Status     int    `json:"status"`
	TaskStatus string `json:"task_status,omitempty"`
	Error      string `json:"error,omitempty"`
	Detail     string `json:"detail,omitempty"`
}

// ReportsReply answers verb report, one result per report in order.
type ReportsReply struct {
	Results []ReportResult `json:"results"`
}

// Abort is pushed when the hub takes a task back (push kind abort): the
// sidecar stops working on that generation.
type Abort struct {
	TaskID     string `json:"task_id"`
	Generation uint64 `json:"generation"`
	Reason     string `json:"reason"`
}

// Error codes of the agent protocol: the hub sets them, the sidecar
// decides on them.
const (
	// CodeSessionReplaced answers a hello from a session that a newer
	// connection of the same agent replaced: that sidecar must stop, or
	// the two would take the agent from each other forever.
	CodeSessionReplaced = "session_replaced"
	// CodeUnknownSession: the hub does not know the session; say hello.
	CodeUnknownSession   = "unknown_session"
	CodeInvalidState     = "invalid_state"
	CodeStaleGeneration  = "stale_generation"
	CodeWrongAgent       = "wrong_agent"
	CodeNotFound         = "not_found"
	CodeValidationFailed = "validation_failed"
	CodeUnavailable      = "unavailable"
	// CodeStoreFull (status 507): the event store's volume is full;
	// nothing was stored. The hub takes writes again once space returns.
	CodeStoreFull = "store_full"
	// CodeRateLimited (429): the agent is over its request budget
	// (agents.request_rate, agents.request_burst); slow down.
	CodeRateLimited = "rate_limited"
	// CodeTooLarge (413): the request body is over the verb's limit.
	CodeTooLarge = "too_large"
	// CodeUnknownVerb (404): no such agent request.
	CodeUnknownVerb = "unknown_verb"
)

// Error is the body of a non-2xx reply. Code is a stable word such as
// stale_generation, wrong_agent, invalid_state, not_found,
// validation_failed, unknown_session.
type Error struct {
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
}

// Reserve asks for paths (or path.Match globs; a trailing "/**" covers
// everything below) of a project for TTLS seconds (verb reserve): an
// exclusive reservation conflicts with any other agent's on an
// overlapping path, a shared one with another's exclusive one.
type Reserve struct {
	Project   string   `json:"project"`
	Paths     []string `json:"paths"`
	Exclusive bool     `json:"exclusive"`
	TTLS      int      `json:"ttl_s,omitempty"`
	Reason    string   `json:"reason,omitempty"`
}

// Reservation is paths of a project held by an agent until ExpiresAt.
type Reservation struct {
	ID        string    `json:"id"`
	Project   string    `json:"project"`
	AgentID   string    `json:"agent_id"`
	Paths     []string  `json:"paths"`
	Exclusive bool      `json:"exclusive"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ReservationRef names one reservation (verbs renew and release); renew
// sets its TTL again from now.
type ReservationRef struct {
	Project string `json:"project"`
	ID      string `json:"id"`
	TTLS    int    `json:"ttl_s,omitempty"`
}

// ReserveConflict answers a reserve that other agents' reservations
// stand in the way of (409): who holds what.
type ReserveConflict struct {
	Error     string        `json:"error"`
	Detail    string        `json:"detail"`
	Conflicts []Reservation `json:"conflicts"`
}

// CodeReservationConflict is ReserveConflict's error word.
const CodeReservationConflict = "reservation_conflict"

// Send is a message to send (verb send; POST /api/messages): to one agent,
// or with To empty to every agent. Body is text (a JSON string, Markdown
// welcome) or, with Type json, any JSON value; at most MaxMessageBody
// bytes. ReplyTo names the message it answers, whose thread it joins.
type Send struct {
	To          string          `json:"to,omitempty"`
	Channel     string          `json:"channel,omitempty"`
	Type        string          `json:"type,omitempty"`
	Subject     string          `json:"subject,omitempty"`
	Body        json.RawMessage `json:"body"`
	ReplyTo     string          `json:"reply_to,omitempty"`
	Importance  string          `json:"importance,omitempty"`
	AckRequired bool            `json:"ack_required,omitempty"`
}

// Message is a stored message. From is the sender (an agent id, or an
// operator's token name), taken from the subject or the token, never the
// body; Seq is its place in the messages stream; ThreadID is the id of
// the first message of its thread.
type Message struct {
	ID          string          `json:"id"`
	Seq         uint64          `json:"seq"`
	From        string          `json:"from"`
	To          string          `json:"to,omitempty"`
	Channel     string          `json:"channel,omitempty"`
	Type        string          `json:"type"`
	Subject     string          `json:"subject,omitempty"`
	Body        json.RawMessage `json:"body"`
	ReplyTo     string          `json:"reply_to,omitempty"`
	ThreadID    string          `json:"thread_id"`
	Importance  string          `json:"importance"`
	AckRequired bool            `json:"ack_required,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
}

// MaxMessageBody bounds a message's body.
const MaxMessageBody = 64 << 10

// Inbox answers the verb inbox: the messages after the agent's cursor,
// oldest first (at most the mailbox's bound), and the cursor.
type Inbox struct {
	Messages []Message `json:"messages"`
	Cursor   uint64    `json:"cursor"`
}

// Ack moves the agent's mailbox cursor to Seq (verb ack): every message up
// to it is acknowledged.
type Ack struct {
	Seq uint64 `json:"seq"`
}

// ChannelRef names a channel (verbs join, leave, history; Limit for
// history: its last that many messages, 50 when left out, at most 200).
type ChannelRef struct {
	Channel string `json:"channel"`
	Limit   int    `json:"limit,omitempty"`
}

// Channel is a channel and who is subscribed to it.
type Channel struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
	Subscribers []string  `json:"subscribers"`
}
