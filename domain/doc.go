// Package domain is AgentCom's model in pure Go: tasks, priorities, statuses,
// the events that change them, and the deciders that turn a command into
// events or a typed error.
//
// # Rules
//
// The package imports only the standard library (a test enforces it). It does
// no I/O and reads no clock: callers pass the time in. Deciders validate and
// return events; Evolve applies an event that already happened and never
// fails on business grounds, so replaying the same events always yields the
// same state.
//
// # Task life cycle
//
//	submitted -> queued --assign--> assigned --accept--> working --complete--> completed
//	               ^  ^                |                    |
//	               |  +---reclaim------+--------------------+
//	               |  +---fail (retries left)---------------+
//	               |                                        |
//	               +--requeue-- dead_letter <--fail (none left) / reclaim limit
//
// Cancel ends any task that is not yet completed or cancelled.
package domain
