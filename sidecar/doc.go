// Package sidecar is the agent-side NATS client: one always-on process per
// agent that connects to the hub with the agent's token, says hello at every
// connect and reconnect, heartbeats, takes assignments, runs them, reports
// progress and the result, and survives its own crashes.
//
// A Sidecar works in one of two modes. In exec mode it runs a shell command
// per task in its own process group, with the task in the environment and
// as JSON on stdin; the command's stdout is the result. In wake mode it runs
// a wake command that starts an agent for the task, then waits for the
// agent to write <results dir>/<task id>.json.
//
// The task held is persisted (write, fsync, rename) before it is accepted,
// so a restarted sidecar reports it in hello and the hub answers continue or
// abort. While working it sends progress, which extends the task's lease;
// a refused progress, or an abort push, means the hub took the task back,
// and the work is stopped without a report. Reports of a finished task are
// retried until the hub gives a definite answer.
//
// Messages for the agent are written to an inbox directory, one JSON file
// each, until acknowledged; after every hello the mailbox is read for
// what waited meanwhile. A unix socket (the relay) lets a task's command
// send, read its inbox, join channels and reserve files as the agent,
// without the token.
//
// The protocol's messages are in package protocol and its subjects in
// broker/subjects.go; docs/protocol.md describes both.
package sidecar
