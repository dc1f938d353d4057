package ops

import (
	"encoding/json"

	"github.com/agentcom/agentcom/broker"
	"github.com/agentcom/agentcom/domain"
	"github.com/agentcom/agentcom/limits"
	"github.com/agentcom/agentcom/projections"
	"github.com/agentcom/agentcom/protocol"
	"github.com/agentcom/agentcom/telemetry"
)

// Error statuses shared by many operations.
var (
	// writeErrors: a command through the single writer.
	writeErrors = []int{404, 409, 422, 500, 503, 507}
	// readErrors: a read of the hub's own state.
	readErrors = []int{500}
)

// The operations. Every one is served over HTTP and over NATS.
var (
	OpHealth = Op{Name: broker.CmdHealth, Method: "GET", Path: "/health", Access: Public,
		Summary: "Whether the hub takes commands (503 with the reason when not)",
		Answers: []Answer{{200, typeOf[Health]()}, {503, typeOf[Health]()}}}
	// OpenAPI is served over NATS too (api.openapi), so that every
	// operation is on both transports and a NATS-only client can read
	// the schemas; the document describes the HTTP routes.
	OpOpenAPI = Op{Name: broker.CmdAPIOpenAPI, Method: "GET", Path: "/api/openapi.json", Access: Public,
		Summary: "This API as an OpenAPI 3.1 document", Answers: ok[json.RawMessage](200)}

	// OpSchemas gives every request body's JSON Schema, as a client that
	// validates before it sends wants them (the same as in OpenAPI).
	OpSchemas = Op{Name: broker.CmdAPISchemas, Method: "GET", Path: "/api/schemas", Access: Public,
		Summary: "The JSON Schema of every request body and filter, by command name",
		Answers: ok[json.RawMessage](200)}

	OpTaskSubmit = Op{Name: broker.CmdTaskSubmit, Method: "POST", Path: "/api/tasks", Access: Admin, Tier: limits.Heavy,
		Summary: "Submit a task", Request: typeOf[SubmitRequest](),
		Answers: ok[Submitted](201), Errors: []int{422, 500, 503, 507}}
	// OpTaskSubmitBatch submits up to MaxBatchSubmit tasks: all are
	// validated before any is stored, and the answer gives each its id.
	OpTaskSubmitBatch = Op{Name: broker.CmdTaskSubmitBatch, Method: "POST", Path: "/api/tasks/batch", Access: Admin,
		Tier:    limits.Heavy,
		Summary: "Submit up to 1,000 tasks: none is stored unless every one is valid", Request: typeOf[SubmitBatchRequest](),
		Answers: ok[SubmittedBatch](201), Errors: []int{413, 422, 500, 503, 507}, MaxBody: domain.MaxMessageBytes}
	OpTaskList = Op{Name: broker.CmdTaskList, Method: "GET", Path: "/api/tasks", Access: Read, Agents: true,
		Summary: "List tasks in queue order (priority, then age)", Query: typeOf[ListQuery](),
		Answers: ok[TaskList](200), Errors: []int{422}}
	OpTaskGet = Op{Name: broker.CmdTaskGet, Method: "GET", Path: "/api/tasks/{id}", Access: Read, Agents: true,
		Summary: "One task, with its recent history", Answers: ok[domain.Task](200), Errors: []int{404}}
	OpTaskStats = Op{Name: broker.CmdTaskStats, Method: "GET", Path: "/api/tasks/stats", Access: Read,
		Summary: "Task counts by status and priority, and the queue by lane", Answers: ok[projections.Stats](200)}
	OpTaskDeadLetter = Op{Name: broker.CmdTaskDeadLetter, Method: "GET", Path: "/api/tasks/dead-letter", Access: Read,
		Summary: "The tasks that failed every retry", Answers: ok[TaskList](200)}
	OpTaskRetry = Op{Name: broker.CmdTaskRetry, Method: "POST", Path: "/api/tasks/{id}/retry", Access: Admin,
		Summary: "Bring a dead-lettered task back to the queue", Answers: ok[Retried](200), Errors: writeErrors}
	OpTaskCancel = Op{Name: broker.CmdTaskCancel, Method: "POST", Path: "/api/tasks/{id}/cancel", Access: Admin,
		Summary: "Cancel a task that has not finished", Request: typeOf[CancelRequest](), OptionalBody: true,
		Answers: ok[Cancelled](200), Errors: writeErrors}

	OpAgentList = Op{Name: broker.CmdAgentList, Method: "GET", Path: "/api/agents", Access: Read, Agents: true,
		Summary: "Every agent with its state machine", Answers: ok[AgentList](200)}
	OpAgentStates = Op{Name: broker.CmdAgentStates, Method: "GET", Path: "/api/agents/states", Access: Read, Agents: true,
		Summary: "The same as agent.list (an older path)", Answers: ok[AgentList](200)}
	OpAgentGet = Op{Name: broker.CmdAgentGet, Method: "GET", Path: "/api/agents/{agent_id}/state", Access: Read, Agents: true,
		Summary: "One agent's state", Answers: ok[domain.Agent](200), Errors: []int{404}}

	OpTokenCreate = Op{Name: broker.CmdTokenCreate, Method: "POST", Path: "/admin/tokens", Access: Admin, Tier: limits.Heavy,
		Summary: "Create a token for an agent, a viewer or an admin (replacing its old one); shown once",
		Request: typeOf[TokenRequest](), Answers: ok[TokenCreated](201), Errors: []int{409, 422, 500, 503}}
	OpTokenList = Op{Name: broker.CmdTokenList, Method: "GET", Path: "/admin/tokens", Access: Admin,
		Summary: "The named tokens (agents', viewers', admins') by prefix", Answers: ok[TokenList](200), Errors: readErrors}
	OpTokenRevoke = Op{Name: broker.CmdTokenRevoke, Method: "DELETE", Path: "/admin/tokens/{agent_id}", Access: Admin,
		Summary: "Revoke the token of a name (an agent's or another) and close its connections", Answers: ok[TokenRevoked](200),
		Errors: []int{404, 422, 500, 503}}

	OpLogLevelGet = Op{Name: broker.CmdLogLevelGet, Method: "GET", Path: "/api/admin/log-level", Access: Admin,
		Summary: "The log levels in force", Answers: ok[LogLevels](200)}
	OpLogLevelSet = Op{Name: broker.CmdLogLevelSet, Method: "PUT", Path: "/api/admin/log-level", Access: Admin,
		Summary: "Change the log level of every module, or of one, until a restart", Request: typeOf[LevelRequest](),
		Answers: ok[LevelSet](200), Errors: []int{422}}

	OpStoreCompact = Op{Name: broker.CmdStoreCompact, Method: "POST", Path: "/api/admin/compact", Access: Admin,
		Summary: "Compact finished tasks older than store.retention now", Answers: ok[Compacted](200), Errors: []int{500}}
	OpStoreBackup = Op{Name: broker.CmdStoreBackup, Method: "POST", Path: "/api/admin/backup", Access: Admin,
		Summary: "Back up the events and tokens now", Answers: ok[BackedUp](200), Errors: []int{500}}
	OpStoreRestore = Op{Name: broker.CmdStoreRestore, Method: "POST", Path: "/api/admin/restore", Access: Admin,
		Summary: "Restore a backup: the hub answers, stops, restores and starts again", Request: typeOf[RestoreRequest](),
		Answers: ok[Restoring](202), Errors: []int{422}}
	OpStoreHealth = Op{Name: broker.CmdStoreHealth, Method: "GET", Path: "/api/admin/store-health", Access: Admin,
		Summary: "The store's streams, last backup, compaction and snapshot, and its health",
		Answers: ok[StoreHealth](200), Errors: readErrors}

	OpTelemetryHistory = Op{Name: broker.CmdTelemetryHistory, Method: "GET", Path: "/api/telemetry/history", Access: Admin,
		Summary: "One page of the telemetry the TELEMETRY stream keeps", Query: typeOf[telemetry.HistoryQuery](),
		Answers: ok[telemetry.HistoryPage](200), Errors: []int{404, 422, 500, 503}}

	OpAgentReset = Op{Name: broker.CmdAgentReset, Method: "POST", Path: "/api/admin/reset/{agent_id}", Access: Admin,
		Summary: "Take back every task an agent holds and clear its unresponsive flag",
		Answers: ok[AgentReset](200), Errors: []int{404, 422, 500, 503}}
	// OpPushTask submits a task for one agent alone (the original's
	// push-task, through the queue and the event log instead of around
	// them).
	OpPushTask = Op{Name: broker.CmdPushTask, Method: "POST", Path: "/api/admin/push-task", Access: Admin,
		Tier: limits.Heavy, Summary: "Submit a task that only the named agent may run",
		Request: typeOf[PushTaskRequest](), Answers: ok[PushedTask](201), Errors: []int{404, 422, 500, 503, 507}}
	OpUsage = Op{Name: broker.CmdUsage, Method: "GET", Path: "/api/usage", Access: Read, Agents: true,
		Summary: "What completions cost, as their agents reported: by day and agent, with totals and the budget",
		Query:   typeOf[UsageQuery](), Answers: ok[Usage](200), Errors: []int{422}}

	OpRateLimitList = Op{Name: broker.CmdRateLimitList, Method: "GET", Path: "/api/admin/rate-limits", Access: Admin,
		Summary: "The rate limits in force: the defaults, every override and the exempt names",
		Answers: ok[limits.State](200)}
	OpRateLimitSet = Op{Name: broker.CmdRateLimitSet, Method: "PUT", Path: "/api/admin/rate-limits/{name}", Access: Admin,
		Summary: "Set a token name's limits (a tier left out keeps the default); kept across restarts",
		Request: typeOf[limits.Override](), Answers: ok[limits.State](200), Errors: []int{422, 500}}
	OpRateLimitClear = Op{Name: broker.CmdRateLimitClear, Method: "DELETE", Path: "/api/admin/rate-limits/{name}",
		Access: Admin, Summary: "Remove a token name's override: the defaults apply again",
		Answers: ok[limits.State](200), Errors: []int{404, 422, 500}}
	OpRateLimitExempt = Op{Name: broker.CmdRateLimitExempt, Method: "PUT", Path: "/api/admin/rate-limits/exempt/{name}",
		Access: Admin, Summary: "Lift every rate limit of a token name", Answers: ok[limits.State](200),
		Errors: []int{422, 500}}
	OpRateLimitUnexempt = Op{Name: broker.CmdRateLimitUnexempt, Method: "DELETE",
		Path: "/api/admin/rate-limits/exempt/{name}", Access: Admin,
		Summary: "Take a token name off the exempt list", Answers: ok[limits.State](200), Errors: []int{404, 422, 500}}
)

// The run-time settings (docs/protocol.md, run-time settings) and onboarding.
var (
	OpConfigList = Op{Name: broker.CmdConfigList, Method: "GET", Path: "/api/config", Access: Read,
		Summary: "Every setting that changes at run time, with its value in force and the file's",
		Answers: ok[Settings](200)}
	OpConfigGet = Op{Name: broker.CmdConfigGet, Method: "GET", Path: "/api/config/{key}", Access: Read,
		Summary: "One run-time setting", Answers: ok[Setting](200), Errors: []int{404}}
	OpConfigSet = Op{Name: broker.CmdConfigSet, Method: "PUT", Path: "/api/config/{key}", Access: Admin,
		Summary: "Change a setting while the hub runs: stored as an event, applied at once, kept across restarts",
		Request: typeOf[SettingRequest](), Answers: ok[Setting](200), Errors: []int{404, 409, 422, 500, 503, 507}}
	OpConfigReset = Op{Name: broker.CmdConfigReset, Method: "DELETE", Path: "/api/config/{key}", Access: Admin,
		Summary: "Return a setting to the configuration file's value", Answers: ok[Setting](200),
		Errors: []int{404, 409, 422, 500, 503, 507}}
	OpOnboard = Op{Name: broker.CmdOnboard, Method: "POST", Path: "/api/onboard/register", Access: Admin,
		Tier: limits.Heavy, Summary: "Register a new agent: its token and a ready sidecar configuration",
		Request: typeOf[OnboardRequest](), Answers: ok[Onboarded](201), Errors: []int{409, 422, 500}}
)

// The operators' view (docs/metrics.md).
var (
	OpMetricsText = Op{Name: broker.CmdMetricsText, Method: "GET", Path: "/metrics", Access: Read,
		Summary: "Prometheus metrics in the text exposition format", Answers: ok[Text](200)}
	OpMetricsGet = Op{Name: broker.CmdMetricsGet, Method: "GET", Path: "/api/metrics", Access: Read,
		Summary: "The metrics snapshot: queue depth over the hour, latency percentiles, utilisation, error rates, store",
		Answers: ok[MetricsSnapshot](200)}
	OpAlertList = Op{Name: broker.CmdAlertList, Method: "GET", Path: "/api/alerts", Access: Read,
		Summary: "Every alert rule's state: inactive, active, acknowledged or cleared", Answers: ok[Alerts](200)}
	OpAlertAck = Op{Name: broker.CmdAlertAck, Method: "POST", Path: "/api/alerts/{rule}/acknowledge", Access: Admin,
		Summary: "Acknowledge an active alert: it stays quiet until its condition clears and returns",
		Answers: ok[Alert](200), Errors: []int{404, 409}}
	OpLogTail = Op{Name: broker.CmdLogTail, Method: "GET", Path: "/api/admin/logs/tail", Access: Admin,
		Summary: "The last lines of the hub's log file (every part's and every sidecar's), oldest first",
		Query:   typeOf[LogTailQuery](), Answers: ok[LogTail](200), Errors: []int{422, 500}}
)

// The agents' file reservations (docs/protocol.md, reservations).
var (
	OpReservationList = Op{Name: broker.CmdReservationList, Method: "GET", Path: "/api/reservations", Access: Read,
		Summary: "The live file reservations, of one project or all", Query: typeOf[ReservationQuery](),
		Answers: ok[Reservations](200), Errors: []int{422, 500}}
	OpReservationRelease = Op{Name: broker.CmdReservationRelease, Method: "DELETE",
		Path: "/api/reservations/{project}/{id}", Access: Admin,
		Summary: "Release any agent's reservation (an operator's force)", Answers: ok[Released](200),
		Errors: []int{404, 422, 500}}
)

// The messages (docs/protocol.md, messages).
var (
	OpMessageSend = Op{Name: broker.CmdMessageSend, Method: "POST", Path: "/api/messages", Access: Admin,
		Summary: "Send a message, from the token's name, to one agent or (to left out) every agent",
		Request: typeOf[protocol.Send](), Answers: ok[protocol.Message](201), Errors: []int{422, 500}}
	OpMessageList = Op{Name: broker.CmdMessageList, Method: "GET", Path: "/api/messages", Access: Read,
		Summary: "Search the kept messages by sender, recipient, thread, text and time, a page at a time",
		Query:   typeOf[MessageQuery](), Answers: ok[Messages](200), Errors: []int{422, 500}}
	OpThreadGet = Op{Name: broker.CmdThreadGet, Method: "GET", Path: "/api/threads/{id}", Access: Read,
		Summary: "A thread's every kept message in order: the reply tree", Answers: ok[Thread](200),
		Errors: []int{404, 500}}
	OpChannelList = Op{Name: broker.CmdChannelList, Method: "GET", Path: "/api/channels", Access: Read,
		Summary: "Every channel with its subscribers", Answers: ok[Channels](200), Errors: []int{500}}
	OpChannelCreate = Op{Name: broker.CmdChannelCreate, Method: "POST", Path: "/api/channels", Access: Admin,
		Summary: "Create a channel (agents' join creates one too)", Request: typeOf[ChannelRequest](),
		Answers: ok[protocol.Channel](201), Errors: []int{409, 422, 500}}
	OpChannelGet = Op{Name: broker.CmdChannelGet, Method: "GET", Path: "/api/channels/{channel}", Access: Read,
		Summary: "One channel", Answers: ok[protocol.Channel](200), Errors: []int{404, 500}}
	OpChannelHistory = Op{Name: broker.CmdChannelHistory, Method: "GET", Path: "/api/channels/{channel}/history",
		Access: Read, Summary: "A channel's last messages, oldest first", Query: typeOf[HistoryQuery](),
		Answers: ok[ChannelHistory](200), Errors: []int{404, 422, 500}}
	OpSubscriptions = Op{Name: broker.CmdSubscriptions, Method: "GET", Path: "/api/agents/{agent_id}/subscriptions",
		Access: Read, Agents: true, Summary: "The channels an agent has joined (an agent: its own)",
		Answers: ok[Subscriptions](200), Errors: []int{500}}
	OpTaskTimeline = Op{Name: broker.CmdTaskTimeline, Method: "GET", Path: "/api/tasks/{id}/timeline", Access: Read,
		Summary: "A task's whole timeline from the event stream: every event with its sequence, time, request id and data",
		Answers: ok[Timeline](200), Errors: []int{404, 500}}
	OpGoalList = Op{Name: broker.CmdGoalList, Method: "GET", Path: "/api/goals", Access: Read,
		Summary: "Every goal with its tasks counted by status, newest first", Answers: ok[Goals](200), Errors: []int{500}}
	OpGoalCreate = Op{Name: broker.CmdGoalCreate, Method: "POST", Path: "/api/goals", Access: Admin,
		Summary: "Create a goal (a submit's goal_id creates one too)", Request: typeOf[GoalRequest](),
		Answers: ok[Goal](201), Errors: []int{409, 422, 500}}
	OpGoalGet = Op{Name: broker.CmdGoalGet, Method: "GET", Path: "/api/goals/{id}", Access: Read,
		Summary: "One goal: its tasks as a DAG and their counts", Answers: ok[Goal](200), Errors: []int{404, 500}}
	OpGoalCancel = Op{Name: broker.CmdGoalCancel, Method: "POST", Path: "/api/goals/{id}/cancel", Access: Admin,
		Summary: "Cancel a goal and its open tasks", Request: typeOf[CancelRequest](), Answers: ok[Goal](200),
		Errors: []int{404, 409, 500}}
	OpScheduleList = Op{Name: broker.CmdScheduleList, Method: "GET", Path: "/api/schedules", Access: Read,
		Summary: "Every periodic schedule with its next tick", Answers: ok[Schedules](200), Errors: []int{500}}
	OpScheduleCreate = Op{Name: broker.CmdScheduleCreate, Method: "POST", Path: "/api/schedules", Access: Admin,
		Summary: "Add a periodic schedule: a cron spec or an interval, and a task to submit at each tick",
		Request: typeOf[ScheduleRequest](), Answers: ok[Schedule](201), Errors: []int{409, 422, 500}}
	OpScheduleDelete = Op{Name: broker.CmdScheduleDelete, Method: "DELETE", Path: "/api/schedules/{name}",
		Access: Admin, Summary: "Delete a schedule: no more ticks (its tasks stay)", Answers: ok[Schedule](200),
		Errors: []int{404, 500}}
)

// All is the table: every operation, in the order documents list them.
var All = []Op{
	OpHealth, OpOpenAPI, OpSchemas,
	OpTaskSubmit, OpTaskSubmitBatch, OpTaskList, OpTaskGet, OpTaskStats, OpTaskDeadLetter, OpTaskRetry, OpTaskCancel,
	OpAgentList, OpAgentStates, OpAgentGet,
	OpTokenCreate, OpTokenList, OpTokenRevoke,
	OpLogLevelGet, OpLogLevelSet,
	OpStoreCompact, OpStoreBackup, OpStoreRestore, OpStoreHealth,
	OpTelemetryHistory,
	OpAgentReset, OpPushTask, OpUsage,
	OpRateLimitList, OpRateLimitSet, OpRateLimitClear, OpRateLimitExempt, OpRateLimitUnexempt,
	OpConfigList, OpConfigGet, OpConfigSet, OpConfigReset, OpOnboard,
	OpMetricsText, OpMetricsGet, OpAlertList, OpAlertAck, OpLogTail,
	OpReservationList, OpReservationRelease,
	OpMessageSend, OpMessageList, OpThreadGet,
	OpChannelList, OpChannelCreate, OpChannelGet, OpChannelHistory, OpSubscriptions,
	OpTaskTimeline, OpGoalList, OpGoalCreate, OpGoalGet, OpGoalCancel, OpScheduleList, OpScheduleCreate, OpScheduleDelete,
}
