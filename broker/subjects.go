package broker

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// JetStream API subjects of the snapshot and restore protocol, which
// nats.go does not wrap: the server's own templates.
const (
	jsSnapshotT = server.JSApiStreamSnapshotT
	jsRestoreT  = server.JSApiStreamRestoreT
)

// Subjects only the hub's in-process connection may publish on
// (docs/durability.md, who may write or remove events).
const (
	// JetStreamAll is every JetStream subject: the API (stream and
	// consumer create, update, purge, delete, message delete, snapshot,
	// restore), acks and flow control. A JetStream API request also
	// writes its answer to the reply subject the caller picks, which may
	// be an event subject, so no client may call any of it.
	JetStreamAll = "$JS.>"
	// KVAll is every KV bucket's subjects: a publish there writes, deletes
	// or (with Nats-Rollup) purges keys, such as the token bucket's.
	KVAll = "$KV.>"
	// InboxAll matches every reply inbox.
	InboxAll = "_INBOX.>"
	// InboxPrefix precedes every reply inbox.
	InboxPrefix = "_INBOX."
)

// SysMonitorPages are the read-only monitoring pages the system user may
// ask for over NATS, as the HTTP monitoring port serves them.
var SysMonitorPages = []string{"VARZ", "CONNZ", "SUBSZ", "ROUTEZ", "GATEWAYZ", "LEAFZ", "JSZ", "ACCOUNTZ",
	"HEALTHZ", "STATZ", "IDZ", "EXPVARZ", "IPQUEUESZ", "RAFTZ"}

// HubOnlySubjects are the subjects no client token may publish on: the
// event stream's (a write past the single writer, or a rollup that
// erases a task's history), the TELEMETRY stream's, the JetStream API
// and the KV buckets. The hub itself connects in-process with its own
// secret and has no such limit.
func HubOnlySubjects() []string {
	return []string{EventsAll, TelemetryHistoryAll, JetStreamAll, KVAll, MessagesAll}
}

// Subjects come in pairs where a family has many members: a wildcard for
// subscribing and a ...T printf template for publishing. This file is the
// only place subject names are written; docs/protocol.md documents them.
const (
	// EventsStream stores every domain event. It is the source of truth.
	EventsStream = "AGENTCOM_EVENTS"
	// EventsAll matches every domain event subject.
	EventsAll = "agentcom.evt.>"
	// TaskEventsT is one task's event subject: agentcom.evt.task.<task id>.
	TaskEventsT = "agentcom.evt.task.%s"

	// StoreEvents carries the events about the store itself (an accepted
	// loss, a quarantined event).
	StoreEvents = "agentcom.evt.store"
	// ConfigEventsT is one run-time setting's event subject:
	// agentcom.evt.config.<key>, such as agentcom.evt.config.agents.stuck_threshold.
	ConfigEventsT = "agentcom.evt.config.%s"
	// ConfigEventsAll matches every setting's subject; ConfigEventsPrefix
	// precedes the key.
	ConfigEventsAll    = "agentcom.evt.config.>"
	ConfigEventsPrefix = "agentcom.evt.config."
	// GoalEventsT is one goal's event subject; GoalEventsAll matches all.
	GoalEventsT   = "agentcom.evt.goal.%s"
	GoalEventsAll = "agentcom.evt.goal.>"
	// ScheduleEventsT is one schedule's event subject; ScheduleEventsAll
	// matches all.
	ScheduleEventsT   = "agentcom.evt.schedule.%s"
	ScheduleEventsAll = "agentcom.evt.schedule.>"
	// AgentEventsT is one agent's event subject: agentcom.evt.agent.<agent id>.
	AgentEventsT = "agentcom.evt.agent.%s"

	// AgentRequestsAll matches every agent-to-hub request. An agent may
	// publish only under its own id, so the hub reads the agent's identity
	// from the subject, never from the payload.
	AgentRequestsAll = "agentcom.agent.*.*"
	// AgentRequestT is an agent-to-hub request: agentcom.agent.<agent id>.<verb>.
	AgentRequestT = "agentcom.agent.%s.%s"
	// AgentPublishT is what an agent may publish on: agentcom.agent.<agent id>.>.
	AgentPublishT = "agentcom.agent.%s.>"
	// PushT is a hub-to-agent push: agentcom.push.<agent id>.<kind>.
	PushT = "agentcom.push.%s.%s"
	// PushAllT is what an agent subscribes to: agentcom.push.<agent id>.>.
	PushAllT = "agentcom.push.%s.>"
	// AgentInboxT is an agent's reply inbox prefix: _INBOX.agent.<agent id>.
	AgentInboxT = "_INBOX.agent.%s"

	// CommandsAll matches every hub command (request/reply).
	CommandsAll = "agentcom.cmd.>"
	// CommandT is one hub command's subject: agentcom.cmd.<noun>.<verb>.
	CommandT = "agentcom.cmd.%s"
	// CommandPrefix is what precedes the command name in its subject.
	CommandPrefix = "agentcom.cmd."

	// TokenCommandsAll matches every hub command sent under a token id:
	// agentcom.tok.<token id>.cmd.<name>. A client may publish only under
	// its own token's id, so the hub reads the caller (and its role) from
	// the subject, as it reads an agent from its requests' subjects.
	TokenCommandsAll = "agentcom.tok.*.cmd.>"
	// TokenCommandT is a command under a token id.
	TokenCommandT = "agentcom.tok.%s.cmd.%s"
	// TokenCommandsT is what a token may publish its commands on.
	TokenCommandsT = "agentcom.tok.%s.cmd.>"
	// TokenInboxT is the reply inbox prefix of a client that sends its
	// commands under its token id: _INBOX.tok.<token id>.
	TokenInboxT = "_INBOX.tok.%s"

	// ClientConnectT is the server's advisory of a new client connection
	// in an account (the system account sees it).
	ClientConnectT = "$SYS.ACCOUNT.%s.CONNECT"
	// ClientDisconnectT is the server's advisory of a closed client
	// connection in an account (the system account sees it).
	ClientDisconnectT = "$SYS.ACCOUNT.%s.DISCONNECT"
	// ClientEventsT matches both advisories of an account (and the
	// server's older account-connections update, which the reader
	// ignores): on one subscription they keep their order.
	ClientEventsT = "$SYS.ACCOUNT.%s.*"
	// SysServerPing asks every server for its status; SysServerPingT for
	// one monitoring page of every server, SysServerReqT of one server
	// (any id). The system user may ask these alone.
	SysServerPing  = "$SYS.REQ.SERVER.PING"
	SysServerPingT = "$SYS.REQ.SERVER.PING.%s"
	SysServerReqT  = "$SYS.REQ.SERVER.*.%s"

	// GlobalAccount is the account every AgentCom client lives in.
	GlobalAccount = "$G"

	// LogsStream keeps log records until the log sink has written them.
	LogsStream = "AGENTCOM_LOGS"
	// LogsAll matches every log record subject.
	LogsAll = "agentcom.log.>"
	// LogHubT is the hub's log subject: agentcom.log.hub.<node>.
	LogHubT = "agentcom.log.hub.%s"
	// LogAgentT is an agent's (its sidecar's) log subject:
	// agentcom.log.agent.<agent id>. An agent may publish only on its own.
	LogAgentT = "agentcom.log.agent.%s"
	// LogSinkConsumer is the durable consumer that writes the log files.
	LogSinkConsumer = "logsink"

	// TelemetryStream keeps recent telemetry for reading back, in batches.
	TelemetryStream = "AGENTCOM_TELEMETRY"
	// TelemetryAll matches every live telemetry subject: agent_com.<event>.
	TelemetryAll = "agent_com.>"
	// TelemetryPrefix precedes a telemetry event's name in its subject.
	TelemetryPrefix = "agent_com."
	// TelemetryHistoryAll matches what the TELEMETRY stream keeps.
	TelemetryHistoryAll = "agentcom.telemetry.>"
	// TelemetryHistoryT is a node's batch subject:
	// agentcom.telemetry.<node>. Each message holds the events the node
	// emitted together, one JSON object per line.
	TelemetryHistoryT = "agentcom.telemetry.%s"

	// TokensBucket is the KV bucket of token hashes.
	TokensBucket = "agentcom_tokens"
	// TokensStream is the stream JetStream keeps the bucket in.
	TokensStream = "KV_" + TokensBucket
	// RateLimitsBucket is the KV bucket of rate-limit overrides and
	// exempt names.
	RateLimitsBucket = "agentcom_rate_limits"
	// MessagesStream keeps the agents' messages, bounded by age and count.
	MessagesStream = "AGENTCOM_MESSAGES"
	// MessagesAll matches every message subject; MessageToT is a direct
	// message's (agentcom.msg.to.<agent id>), MessageBroadcast a broadcast's.
	MessagesAll      = "agentcom.msg.>"
	MessageToT       = "agentcom.msg.to.%s"
	MessageBroadcast = "agentcom.msg.all"
	// MessageChannelT is a channel's messages: agentcom.msg.ch.<channel>.
	MessageChannelT = "agentcom.msg.ch.%s"
	// ChannelsBucket keeps each channel: its description and subscribers.
	ChannelsBucket = "agentcom_channels"
	// MailboxesBucket keeps each agent's mailbox cursor: the last message
	// sequence it acknowledged.
	MailboxesBucket = "agentcom_mailboxes"
	// ReservationsBucket is the KV bucket of file reservations: one key
	// per project, holding its reservations.
	ReservationsBucket = "agentcom_reservations"
	// IdempotencyBucket maps a submit's idempotency key (hashed with its
	// submitter) to the task it made, for the idempotency window.
	IdempotencyBucket = "agentcom_idempotency"
	// ReservationKeyT is a project's key's subject in the bucket.
	ReservationKeyT = "$KV." + ReservationsBucket + ".%s"
)

// The hub commands, each answered on CommandT with the same JSON bodies as
// the HTTP API. protocol/ops declares each one's route, types and errors.
const (
	CmdTaskSubmit      = "task.submit"
	CmdTaskSubmitBatch = "task.submit_batch"
	CmdTaskList        = "task.list"
	CmdTaskGet         = "task.get"
	CmdTaskStats       = "task.stats"
	CmdTaskDeadLetter  = "task.dead_letter"
	CmdTaskRetry       = "task.retry"
	CmdTaskCancel      = "task.cancel"
	CmdAgentList       = "agent.list"
	CmdAgentGet        = "agent.get"
	CmdTokenCreate     = "token.create"
	CmdTokenList       = "token.list"
	CmdTokenRevoke     = "token.revoke"
	CmdStoreCompact    = "store.compact"
	CmdStoreHealth     = "store.health"
	CmdStoreBackup     = "store.backup"
	// CmdTelemetryHistory reads back kept telemetry, a page at a time.
	CmdTelemetryHistory = "telemetry.history"
	CmdHealth           = "hub.health"
	CmdAgentStates      = "agent.states"
	CmdLogLevelGet      = "log_level.get"
	CmdLogLevelSet      = "log_level.set"
	CmdStoreRestore     = "store.restore"
	// CmdAPIOpenAPI answers the OpenAPI document of the HTTP API.
	CmdAPIOpenAPI = "api.openapi"
	// CmdAPISchemas answers every request body's JSON Schema.
	CmdAPISchemas = "api.schemas"
	// The rate-limit commands: the limits in force, a name's override,
	// the exempt list.
	CmdRateLimitList     = "rate_limit.list"
	CmdRateLimitSet      = "rate_limit.set"
	CmdRateLimitClear    = "rate_limit.clear"
	CmdRateLimitExempt   = "rate_limit.exempt"
	CmdRateLimitUnexempt = "rate_limit.unexempt"
	// CmdAgentReset takes an agent's tasks back and clears its flag.
	CmdAgentReset = "agent.reset"
	// CmdPushTask submits a task for one agent.
	CmdPushTask = "task.push"
	// CmdUsage reads what completions cost, by day and agent.
	CmdUsage = "usage.get"
	// The run-time settings: all, one, a change, back to the file's value.
	CmdConfigList  = "config.list"
	CmdConfigGet   = "config.get"
	CmdConfigSet   = "config.set"
	CmdConfigReset = "config.reset"
	// CmdOnboard registers a new agent: its token and a sidecar config.
	CmdOnboard = "onboard.register"
	// CmdMetricsText answers the Prometheus text; CmdMetricsGet the JSON snapshot.
	CmdMetricsText = "metrics.prometheus"
	CmdMetricsGet  = "metrics.get"
	// CmdAlertList lists the alerts; CmdAlertAck acknowledges one.
	CmdAlertList = "alert.list"
	CmdAlertAck  = "alert.acknowledge"
	// CmdLogTail reads the last lines of the log file.
	CmdLogTail = "log.tail"
	// CmdReservationList lists file reservations; CmdReservationRelease
	// releases one (an admin's force).
	CmdReservationList    = "reservation.list"
	CmdReservationRelease = "reservation.release"
	// The messages: an operator's send, the search, a thread.
	CmdMessageSend = "message.send"
	CmdMessageList = "message.list"
	CmdThreadGet   = "thread.get"
	// The channels: list, create, one, its history, an agent's.
	CmdChannelList    = "channel.list"
	CmdChannelCreate  = "channel.create"
	CmdChannelGet     = "channel.get"
	CmdChannelHistory = "channel.history"
	CmdSubscriptions  = "agent.subscriptions"
	CmdTaskTimeline   = "task.timeline"
	CmdGoalList       = "goal.list"
	CmdGoalCreate     = "goal.create"
	CmdGoalGet        = "goal.get"
	CmdGoalCancel     = "goal.cancel"
	CmdScheduleList   = "schedule.list"
	CmdScheduleCreate = "schedule.create"
	CmdScheduleDelete = "schedule.delete"
)

// Agent-to-hub request verbs.
const (
	VerbHello     = "hello"
	VerbHeartbeat = "heartbeat"
	VerbAccept    = "accept"
	VerbDecline   = "decline"
	VerbProgress  = "progress"
	VerbComplete  = "complete"
	VerbFail      = "fail"
	VerbReport    = "report" // several of accept, progress, complete and fail at once
	VerbBye       = "bye"
	VerbBlocked   = "blocked"
	VerbUnblocked = "unblocked"
	// File reservations: reserve paths in a project, renew, release.
	VerbReserve = "reserve"
	VerbRenew   = "renew"
	VerbRelease = "release"
	// Messages: send one, read the mailbox, acknowledge up to a sequence.
	VerbSend  = "send"
	VerbInbox = "inbox"
	VerbAck   = "ack"
	// Channels: join (creating it if need be), leave, read the history.
	VerbJoin    = "join"
	VerbLeave   = "leave"
	VerbHistory = "history"
)

// IsAgentVerb reports whether verb is one of the agent request verbs.
func IsAgentVerb(verb string) bool {
	switch verb {
	case VerbHello, VerbHeartbeat, VerbAccept, VerbDecline, VerbProgress, VerbComplete, VerbFail, VerbReport, VerbBye,
		VerbBlocked, VerbUnblocked, VerbReserve, VerbRenew, VerbRelease, VerbSend, VerbInbox, VerbAck,
		VerbJoin, VerbLeave, VerbHistory:
		return true
	}
	return false
}

// Hub-to-agent push kinds.
const (
	PushTask  = "task"
	PushTasks = "tasks" // several assignments in one push, to agents that asked for batch
	PushAbort = "abort"
	// PushMessage is a message for the agent (docs/protocol.md, messages).
	PushMessage = "message"
)

// TokenCommand returns the subject of a command sent under a token id.
func TokenCommand(tokenID, name string) string { return fmt.Sprintf(TokenCommandT, tokenID, name) }

// TokenCommands returns what a token may publish its commands on.
func TokenCommands(tokenID string) string { return fmt.Sprintf(TokenCommandsT, tokenID) }

// TokenInbox returns the reply inbox prefix of a token's client.
func TokenInbox(tokenID string) string { return fmt.Sprintf(TokenInboxT, tokenID) }

// ParseTokenCommand splits agentcom.tok.<token id>.cmd.<name>.
func ParseTokenCommand(subject string) (tokenID, name string, ok bool) {
	rest, ok := strings.CutPrefix(subject, "agentcom.tok.")
	if !ok {
		return "", "", false
	}
	tokenID, name, ok = strings.Cut(rest, ".cmd.")
	return tokenID, name, ok && tokenID != "" && name != "" && !strings.Contains(tokenID, ".")
}

// LogHub returns the hub's log subject for a node.
func LogHub(node string) string { return fmt.Sprintf(LogHubT, subjectToken(node)) }

// TelemetryHistory returns a node's telemetry batch subject.
func TelemetryHistory(node string) string { return fmt.Sprintf(TelemetryHistoryT, subjectToken(node)) }

// LogAgent returns an agent's log subject.
func LogAgent(agentID string) string { return fmt.Sprintf(LogAgentT, agentID) }

// subjectToken makes a name safe as one subject token.
func subjectToken(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '.' || c == '*' || c == '>' || c == ' ' || c < 0x21 {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// AgentEvents returns the event subject of one agent.
func AgentEvents(agentID string) string { return fmt.Sprintf(AgentEventsT, agentID) }

// HubQueue is the queue group of every hub subscription that takes
// requests (commands, agents' lanes), so that hubs may share the work.
const HubQueue = "agentcom-hub"

// AgentRequests matches every request of one agent: its lane's subject.
func AgentRequests(agentID string) string { return AgentRequest(agentID, "*") }

// AgentRequest returns the subject of an agent's request.
func AgentRequest(agentID, verb string) string { return fmt.Sprintf(AgentRequestT, agentID, verb) }

// Push returns the subject of a push to an agent.
func Push(agentID, kind string) string { return fmt.Sprintf(PushT, agentID, kind) }

// AgentInbox returns an agent's inbox prefix.
func AgentInbox(agentID string) string { return fmt.Sprintf(AgentInboxT, agentID) }

// IsAgentInbox reports whether subject is under the agent's own inbox.
func IsAgentInbox(agentID, subject string) bool {
	return strings.HasPrefix(subject, AgentInbox(agentID)+".")
}

// IsInbox reports whether subject is a reply inbox: the only place the
// hub answers a command, so a caller cannot steer its answer elsewhere.
func IsInbox(subject string) bool { return strings.HasPrefix(subject, InboxPrefix) }

// ParseAgentRequest splits agentcom.agent.<agent id>.<verb>.
func ParseAgentRequest(subject string) (agentID, verb string, ok bool) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != "agentcom" || parts[1] != "agent" {
		return "", "", false
	}
	return parts[2], parts[3], true
}

// ConfigEvents is the event subject of the run-time setting key.
func ConfigEvents(key string) string { return fmt.Sprintf(ConfigEventsT, key) }

// MessageChannel is the subject of a channel's messages.
func MessageChannel(name string) string { return fmt.Sprintf(MessageChannelT, name) }

// MessageTo is the subject of a direct message to agentID.
func MessageTo(agentID string) string { return fmt.Sprintf(MessageToT, agentID) }

// GoalEvents is the event subject of one goal.
func GoalEvents(id string) string { return fmt.Sprintf(GoalEventsT, id) }

// ScheduleEvents is the event subject of one schedule.
func ScheduleEvents(name string) string { return fmt.Sprintf(ScheduleEventsT, name) }

// TaskEvents returns the event subject of one task. The id must already be
// validated as a single subject token.
func TaskEvents(taskID string) string { return fmt.Sprintf(TaskEventsT, taskID) }

// Command returns the subject of a hub command such as CmdTaskSubmit.
func Command(name string) string { return fmt.Sprintf(CommandT, name) }
