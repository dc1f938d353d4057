package telemetry

import "strings"

// Spec describes one catalog event: its name, measurements, metadata and
// when it fires. docs/telemetry.md lists exactly these (a test checks).
type Spec struct {
	Name         string
	Measurements []string
	Metadata     []string
	When         string
}

// Span tells whether the event is a span; its When starts with "span:".
func (s Spec) Span() bool { return strings.HasPrefix(s.When, "span:") }

// Catalog is every event the hub emits. Spans appear once, by their base
// name, with a When that starts "span:"; they emit <name>.start, .stop and
// .exception.
var Catalog = []Spec{
	{"task.submit", []string{"queue_depth"}, []string{"task_id", "priority", "submitted_by", "request_id"}, "a task is stored"},
	{"task.assign", []string{"wait_ms"}, []string{"task_id", "priority", "agent_id", "generation", "request_id"}, "the scheduler's assignment is stored (wait_ms: since the task was queued)"},
	{"task.accept", nil, []string{"task_id", "priority", "agent_id", "generation", "request_id"}, "the agent accepts its assignment"},
	{"task.progress", nil, []string{"task_id", "priority", "agent_id", "generation", "request_id"}, "the agent sends a progress heartbeat"},
	{"task.complete", []string{"duration_ms", "tokens_used", "cost_usd"}, []string{"task_id", "priority", "agent_id", "generation", "request_id"}, "the agent completes the task (duration_ms: since the assignment; tokens_used and cost_usd: the usage it reported, 0 without)"},
	{"task.fail", []string{"retry_count"}, []string{"task_id", "priority", "agent_id", "error", "request_id"}, "the agent reports a failed attempt"},
	{"task.dead_letter", []string{"retry_count"}, []string{"task_id", "priority", "reason", "request_id"}, "the task runs out of retries or reclaims, or is overdue"},
	{"task.reclaim", nil, []string{"task_id", "priority", "agent_id", "reason", "request_id"}, "the hub takes the task back from its agent"},
	{"task.retry", []string{"delay_ms"}, []string{"task_id", "priority", "reason", "request_id"}, "the task is queued again, after a failure (reason failed: handed out again after delay_ms of backoff) or out of the dead letter (reason requeued)"},
	{"task.cancel", nil, []string{"task_id", "priority", "by", "request_id"}, "the task is cancelled"},
	{"task.wait", []string{"dependencies"}, []string{"task_id", "priority", "request_id"}, "a submitted task waits on dependencies not yet complete (dependencies: how many)"},
	{"task.release", []string{"wait_ms"}, []string{"task_id", "priority", "by", "request_id"}, "a waiting task is queued: its last dependency completed (by; wait_ms: since its submit)"},
	{"goal.completed", []string{"tasks", "failed"}, []string{"goal_id", "request_id"}, "every task of a goal completed (tasks: how many)"},
	{"goal.failed", []string{"tasks", "failed"}, []string{"goal_id", "request_id"}, "a goal's tasks have all settled and some were dead-lettered or cancelled (failed: how many)"},
	{"agent.connect", []string{"capabilities"}, []string{"agent_id", "capabilities", "request_id"}, "an agent says hello (capabilities: how many)"},
	{"agent.disconnect", []string{"connected_duration_ms"}, []string{"agent_id", "reason", "request_id"}, "an agent's connection ends"},
	{"agent.evict", []string{"stale_ms"}, []string{"agent_id", "request_id"}, "the reaper removes a silent agent"},
	{"agent.violation", []string{"count", "cooldown_ms"}, []string{"agent_id", "kind", "op", "subject", "disconnected"}, "an agent's refused requests or permission violations, summarised: at the first of an interval, then once per agents.violation_log_interval with the count; disconnected (cooldown_ms set) when they reach agents.violation_threshold"},
	{"fsm.transition", []string{"duration_ms"}, []string{"agent_id", "from", "to", "task_id", "request_id"}, "an agent changes state (duration_ms: time in the previous state)"},
	{"scheduler.attempt", []string{"idle_agents", "queued_tasks"}, []string{"trigger"}, "the scheduler makes a pass"},
	{"scheduler.match", nil, []string{"task_id", "agent_id"}, "the scheduler matches a task to an agent"},
	{"projection.rebuild", nil, []string{"last_seq", "events"}, "span: the hub rebuilds its projections at start (events: how many it applied)"},
	{"store.snapshot_load", nil, []string{"loaded", "last_seq", "reason"}, "span: at start, the projection snapshot is loaded (or discarded, with the reason)"},
	{"mcp.tool", nil, []string{"tool", "caller", "outcome", "status", "request_id"}, "span: an MCP tool call (agentcom mcp, or /mcp on the hub) runs its operation: outcome ok or the hub's error word"},
	{"store.backup", nil, []string{"file", "bytes", "pruned"}, "span: a backup is written (daily, or agentcom backup / POST /api/admin/backup)"},
	{"store.compaction", nil, []string{"before", "compacted", "failed", "events_removed"}, "span: finished tasks older than the retention are summarised (every 6h, or on demand)"},
	{"store.loss", nil, []string{"reason", "last_seq"}, "at start, the hub finds events missing from its store (reason: the range lost) and refuses commands until a backup is restored or the loss accepted"},
	{"store.restore", nil, []string{"file", "streams"}, "span: a backup is restored (kept in the TELEMETRY stream: the hub is down meanwhile)"},
	{"store.full", []string{"duration_ms"}, []string{"state", "reason"}, "the event store becomes full (state full, with the reason: writes are refused) or writable again (state writable; duration_ms: how long it was full)"},
	{"rate.limited", []string{"count"}, []string{"name", "role", "tier", "op"}, "a caller's request is refused over its tier's rate limit (429): at once for the first of a second, then with the count of refusals since, at most once a second per caller and tier"},
	{"log.level_change", nil, []string{"module", "from", "to", "by", "request_id"}, "an admin changes a log level"},
	{"alert.fire", []string{"value", "threshold"}, []string{"rule", "severity", "message"}, "an alert rule's condition holds: the alert becomes active (docs/metrics.md, alerts)"},
	{"alert.clear", []string{"duration_ms"}, []string{"rule", "severity"}, "a firing alert's condition went away (duration_ms: since it fired)"},
	{"alert.acknowledge", nil, []string{"rule", "severity", "by"}, "an admin acknowledges an active alert"},
	{"reservation.reserve", []string{"paths", "ttl_s"}, []string{"project", "agent_id", "reservation_id", "exclusive"}, "an agent reserves paths of a project"},
	{"reservation.conflict", []string{"holders"}, []string{"project", "agent_id", "holder"}, "an agent's reserve is refused: others hold overlapping paths (holder: the first of them)"},
	{"reservation.release", nil, []string{"project", "agent_id", "reservation_id", "reason"}, "a reservation is given up: by its agent or an operator (reason released), or because its agent is gone past the reconnect grace (agent_gone)"},
	{"reservation.expire", nil, []string{"project", "agent_id", "reservation_id"}, "a reservation outlived its TTL and is dropped"},
	{"message.send", []string{"bytes", "recipients"}, []string{"message_id", "from", "to", "thread_id"}, "a message is stored and pushed to the connected recipients (to empty: a broadcast)"},
	{"message.ack", nil, []string{"agent_id", "seq"}, "an agent acknowledges its mailbox up to a sequence"},
	{"message.deliver", []string{"recipients"}, []string{"message_id"}, "a new message is pushed at once to its connected recipients"},
	{"message.mailbox", []string{"messages"}, []string{"agent_id"}, "an agent reads its mailbox (its sidecar does at every hello): its unacknowledged messages are handed to it again"},
	{"message.queue", []string{"recipients"}, []string{"message_id", "to", "channel"}, "a direct or channel message waits in the mailboxes of recipients that are not connected"},
	{"message.expire", []string{"messages"}, []string{"agent_id", "reason"}, "unacknowledged messages an agent will never read: more than its mailbox holds (reason mailbox_bound)"},
	{"config.change", nil, []string{"key", "from", "to", "reset", "by", "request_id"}, "an admin changes a run-time setting, or resets it to the file's value (reset true)"},
}
