package broker

import "fmt"

// Subjects come in pairs where a family has many members: a wildcard for
// subscribing and a ...T printf template for publishing. This file is the
// only place subject names are written; docs/protocol.md documents them.
const (
	// EventsStream stores every domain event. It is the source of truth.
	EventsStream = "AGENTCOM_EVENTS"
	// EventsAll matches every domain event subject.
	EventsAll = "agentcom.evt.>"
	// TaskEventsAll matches the events of every task.
	TaskEventsAll = "agentcom.evt.task.*"
	// TaskEventsT is one task's event subject: agentcom.evt.task.<task id>.
	TaskEventsT = "agentcom.evt.task.%s"

	// CommandsAll matches every hub command (request/reply).
	CommandsAll = "agentcom.cmd.>"
	// CommandT is one hub command's subject: agentcom.cmd.<noun>.<verb>.
	CommandT = "agentcom.cmd.%s"
	// CommandPrefix is what precedes the command name in its subject.
	CommandPrefix = "agentcom.cmd."

	// TokensBucket is the KV bucket of token hashes.
	TokensBucket = "agentcom_tokens"
)

// The hub commands, each answered on CommandT with the same JSON bodies as
// the HTTP API.
const (
	CmdTaskSubmit     = "task.submit"
	CmdTaskList       = "task.list"
	CmdTaskGet        = "task.get"
	CmdTaskStats      = "task.stats"
	CmdTaskDeadLetter = "task.dead_letter"
	CmdTaskRetry      = "task.retry"
	CmdTaskCancel     = "task.cancel"
)

// TaskEvents returns the event subject of one task. The id must already be
// validated as a single subject token.
func TaskEvents(taskID string) string { return fmt.Sprintf(TaskEventsT, taskID) }

// Command returns the subject of a hub command such as CmdTaskSubmit.
func Command(name string) string { return fmt.Sprintf(CommandT, name) }
